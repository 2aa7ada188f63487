import { defineProject } from 'vitest/config'

export default defineProject({
  test: { testTimeout: 120_000, hookTimeout: 180_000 },
})
