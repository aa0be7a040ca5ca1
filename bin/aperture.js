#!/usr/bin/env node
// Runs the bundled CLI (scripts/bundle.mjs); `npm install` builds it (the `prepare` script).
import { existsSync } from "node:fs"
import module from "node:module"
import { fileURLToPath } from "node:url"

const entry = new URL("../dist/bundle/main.mjs", import.meta.url)
if (!existsSync(fileURLToPath(entry))) {
  console.error("aperture: not built yet; run `npm run build` (npm install does it)")
  process.exit(1)
}
// Node 22+ keeps V8's compiled code for the modules loaded from here on (~0.1 s of a start);
// older Node has no such API and loads as before. The directory's policy is in cacheDir.ts.
if (typeof module.enableCompileCache === "function") {
  const { cacheDir } = await import("../dist/src/config/cacheDir.js")
  const dir = cacheDir("node-compile-cache")
  if (dir !== undefined) module.enableCompileCache(dir)
}
await import(entry.href)
