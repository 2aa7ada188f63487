import { defineConfig } from 'vitest/config'

// The root run (`pnpm test`) runs every package's tests as one Vitest run, so CI gets one count.
// Files run one at a time: each starts real Postgres clusters and Redis servers, and the machine has two cores.
export default defineConfig({
  test: { projects: ['packages/*', 'apps/*'], fileParallelism: false },
})
