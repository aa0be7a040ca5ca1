#!/usr/bin/env node
// Runs the bundled CLI (scripts/bundle.mjs); `npm install` builds it (the `prepare` script).
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const entry = new URL("../dist/bundle/main.mjs", import.meta.url)
if (!existsSync(fileURLToPath(entry))) {
  console.error("aperture: not built yet; run `npm run build` (npm install does it)")
  process.exit(1)
}
await import(entry.href)
