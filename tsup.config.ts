import { existsSync } from 'node:fs'
import { defineConfig } from 'tsup'

// One build for every published package: ESM + .d.ts from src/index.ts, plus src/testing.ts
// (the conformance-suite subpath) where a package has one. Run from the package's directory.
export default defineConfig({
  entry: ['src/index.ts', 'src/testing.ts'].filter((entry) => existsSync(entry)),
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
})
