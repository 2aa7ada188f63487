import { readFileSync } from 'node:fs'
import { defineConfig } from 'tsup'

type ExportTarget = string | { import?: string }

// One build for every published package, run from the package's directory: ESM + .d.ts for each
// entry the package publishes. The entries are derived from `publishConfig.exports`
// (`./dist/express.js` is built from `src/express.ts`), so adding a subpath is one line in package.json.
const { publishConfig } = JSON.parse(readFileSync('package.json', 'utf8')) as {
  publishConfig?: { exports?: Record<string, ExportTarget> }
}
const entry = Object.values(publishConfig?.exports ?? { '.': './dist/index.js' }).map((target) => {
  const file = typeof target === 'string' ? target : target.import
  if (!file?.startsWith('./dist/')) throw new Error(`publishConfig.exports target ${file} is not in ./dist`)
  return file.replace('./dist/', 'src/').replace(/\.js$/, '.ts')
})

export default defineConfig({
  entry,
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
})
