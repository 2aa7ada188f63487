import { defineConfig } from 'vitest/config'

const report = process.env.SCALE_TEST_REPORT

// The root run (`pnpm test`) runs every package's tests as one Vitest run, so CI gets one count.
// Files run one at a time: each starts real Postgres clusters and Redis servers, and the machine has two cores.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    fileParallelism: false,
    // CI sets SCALE_TEST_REPORT to read the passed/failed counts from a JSON report.
    ...(report ? { reporters: ['default', 'json'], outputFile: { json: report } } : {}),
  },
})
