import { defineConfig } from 'tsup'

// The shared config builds src/index.ts only; this package also ships one subpath per adapter so
// an Express app never loads Fastify's types or Hono's, and the core stays framework-free.
export default defineConfig({
  entry: ['src/index.ts', 'src/node.ts', 'src/express.ts', 'src/fastify.ts', 'src/hono.ts', 'src/fetch.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
})
