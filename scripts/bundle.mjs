/**
 * Bundles the compiled CLI (`dist/src`) into `dist/bundle/` for `npx aperture`: Node's ES module
 * loader spends ~1.4 ms per module, and the CLI's graph is ~950 of them (measured: start to
 * listening 2.2–2.5 s unbundled, 1.7–1.8 s bundled, on the bench's 2-core VM). Vite ships its CLI
 * bundled for the same reason.
 *
 * - Two entries, `main.mjs` (the CLI) and `index.mjs` (the public API), share chunks beside them:
 *   a config's `import … from "aperture-gateway"` (or `"aperture"`) is pointed at this `index.mjs` (see
 *   `src/config/load.ts`), so config and CLI use one instance of every module.
 * - `effect` stays external: configs and plugins import it themselves, and they must get the
 *   copy the gateway runs on.
 * - `jiti` stays external (it loads its transpiler lazily), as do `ws`'s optional native addons
 *   and `better-sqlite3` (a native addon that finds its `.node` file beside its own package).
 * - The library entry (`import { Aperture } from "aperture"` in a program) is not bundled: a
 *   host's `@effect/platform` server and router must meet the gateway's own copy.
 * - `@effect/cli` imports `yaml`, `toml` and `ini` for options that read a file's contents
 *   (`Options.fileParse` and kin), which this CLI has none of: they are replaced by a stub that
 *   says so if ever called, ~400 KB the CLI no longer parses at every start.
 *
 * Run by `npm run build`, after `tsc`.
 */
import { rmSync } from "node:fs"
import { build } from "esbuild"

/** Resolves `yaml`, `toml` and `ini`, imported by `@effect/cli` only, to a stub `parse`. */
const withoutCliFileParsers = {
  name: "without-cli-file-parsers",
  setup(build) {
    build.onResolve({ filter: /^(yaml|toml|ini)$/ }, (args) =>
      args.importer.includes("@effect/cli") ? { path: args.path, namespace: "cli-file-parser-stub" } : undefined
    )
    build.onLoad({ filter: /.*/, namespace: "cli-file-parser-stub" }, (args) => ({
      contents: `export const parse = () => { throw new Error("the aperture CLI does not read ${args.path} files") }`,
      loader: "js"
    }))
  }
}

// Chunk names carry a content hash: clear the last build's.
rmSync("dist/bundle", { recursive: true, force: true })
await build({
  entryPoints: ["dist/src/cli/main.js", "dist/src/index.js"],
  outdir: "dist/bundle",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outExtension: { ".js": ".mjs" },
  entryNames: "[name]",
  chunkNames: "[name]-[hash]",
  sourcemap: true,
  external: ["effect", "jiti", "bufferutil", "utf-8-validate", "better-sqlite3"],
  plugins: [withoutCliFileParsers],
  // Bundled CommonJS dependencies call `require`, which ES modules do not have.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: "warning"
})
