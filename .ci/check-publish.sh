#!/usr/bin/env bash
# Lints what a published package will really ship: packs it with pnpm (which applies
# publishConfig, so `exports` point at dist/) and runs publint and are-the-types-wrong on the tarball.
# Run from the package's directory after its build (`pnpm check:publish` at the root does both).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pnpm pack --pack-destination "$out" >/dev/null
tarball=$(ls "$out"/*.tgz)
"$root/node_modules/.bin/publint" run "$tarball" --strict
"$root/node_modules/.bin/attw" "$tarball" --profile esm-only
