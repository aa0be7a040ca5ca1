/**
 * Finds and loads the config file: `aperture.config.ts` (or .mts/.js/.mjs) through jiti, or a
 * `.json`/`.jsonc` file in the original Aperture shape, then decodes it.
 * @module
 */
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { createJiti } from "jiti"
import { cacheDir } from "./cacheDir.js"
import { ConfigInvalid, decodeConfig } from "./decode.js"
import { decodeApertureJson } from "./json.js"
import type { BuiltInPlugins } from "./jsonAuth.js"
import { parseJsonc } from "./jsonc.js"
import type { ApertureConfig } from "./model.js"

export class ConfigNotFound extends Data.TaggedError("ConfigNotFound")<{ readonly searched: ReadonlyArray<string> }> {
  override get message() {
    return `no config file found (looked for ${this.searched.join(", ")})`
  }
}

/** The file exists but could not be read or evaluated (syntax error, a throw, a missing import). */
export class ConfigLoadError extends Data.TaggedError("ConfigLoadError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message() {
    return `cannot load ${this.file}: ${this.reason}`
  }
}

export type ConfigError = ConfigNotFound | ConfigLoadError | ConfigInvalid

export const DEFAULT_CONFIG_FILES = [
  "aperture.config.ts",
  "aperture.config.mts",
  "aperture.config.js",
  "aperture.config.mjs",
  "aperture.json",
  "aperture.jsonc"
]

/** The file to load: the explicit one, or the first default name present in `cwd`. */
export const resolveConfigPath = (cwd: string, explicit?: string) =>
  Effect.suspend(() => {
    if (explicit !== undefined) {
      const file = path.resolve(cwd, explicit)
      return existsSync(file) ? Effect.succeed(file) : Effect.fail(new ConfigNotFound({ searched: [file] }))
    }
    const searched = DEFAULT_CONFIG_FILES.map((f) => path.join(cwd, f))
    const found = searched.find((f) => existsSync(f))
    return found === undefined ? Effect.fail(new ConfigNotFound({ searched })) : Effect.succeed(found)
  })

/**
 * This package's entry, in whichever tree is running (source, compiled, or the CLI's bundle,
 * whose entry sits beside its chunks), so configs share our module instance.
 */
const selfEntry = (): string => {
  const here = fileURLToPath(import.meta.url)
  const ext = path.extname(here)
  if (ext === ".mjs") return path.join(path.dirname(here), "index.mjs")
  return path.resolve(path.dirname(here), `../index${ext}`)
}

/** The error's first line, and where in the config it happened when that can be told. */
const describeCause = (cause: unknown, file: string): string => {
  if (!(cause instanceof Error)) return String(cause)
  const [first = "", ...rest] = cause.message.split("\n")
  // jiti puts a syntax error's `file:line:column` on the message's next line; a throw's is in the stack.
  const position = rest.map((line) => line.trim()).find((line) => /:\d+:\d+$/.test(line))
  const frame = (cause.stack ?? "").split("\n").find((line) => line.includes(file))
  const location = position ?? (frame === undefined ? undefined : /\(?([^()\s]+:\d+:\d+)\)?\s*$/.exec(frame)?.[1])
  return `${first.trim()}${location ? ` (at ${location})` : ""}`
}

const defaultExport = (module: unknown): unknown => (module as { default?: unknown } | undefined)?.default ?? module

/** Errors writing jiti's cache (a full or read-only disk): the load is retried without the cache. */
const CACHE_WRITE_ERRORS = new Set(["EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT"])

/**
 * The names a config imports this package by: the published one, and the one configs written in
 * this repository (and before the package was published) use.
 */
const PACKAGE_NAMES = ["aperture-gateway", "aperture"] as const

// Not named `jitiImport`: jiti's transform declares that name in every module it transpiles, and
// the in-process loader transpiles this file too (`aperture` aliased to the source tree).
const importThroughJiti = async (file: string, fsCache: string | false, rebuildFsCache: boolean): Promise<unknown> => {
  const entry = selfEntry()
  const jiti = createJiti(import.meta.url, {
    moduleCache: false,
    // Transpiled once per content (jiti keys the cache by the source's hash), so a restart does
    // not load the transpiler: ~0.2 s of start-up. See cacheDir.ts for where, and why there.
    fsCache,
    rebuildFsCache,
    interopDefault: true,
    alias: Object.fromEntries(PACKAGE_NAMES.map((name) => [name, entry]))
  })
  // jiti imports a `.js`/`.mjs` file natively, and Node would then resolve its `aperture-gateway`
  // from node_modules: for the CLI's bundle, a second copy of the gateway. Transpiled, the
  // alias applies, as it does for `.ts`.
  return /\.m?js$/i.test(file)
    ? defaultExport(await jiti.evalModule(await readFile(file, "utf8"), { filename: file, async: true, forceTranspile: true }))
    : await jiti.import(file, { default: true })
}

/**
 * Loads through the transpile cache when there is one. A cached module that fails to parse is
 * rebuilt from source once (a genuine syntax error fails again, and is reported); a cache that
 * cannot be written is skipped.
 */
const importWithCache = async (file: string): Promise<unknown> => {
  const fsCache = cacheDir("jiti") ?? false
  if (fsCache === false) return importThroughJiti(file, false, false)
  try {
    return await importThroughJiti(file, fsCache, false)
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code
    if (typeof code === "string" && CACHE_WRITE_ERRORS.has(code)) return importThroughJiti(file, false, false)
    if (error instanceof SyntaxError) return importThroughJiti(file, fsCache, true)
    throw error
  }
}

const importModule = (file: string) =>
  Effect.tryPromise({
    try: async () => {
      const loaded = await importWithCache(file)
      return typeof loaded === "function" ? await (loaded as () => unknown)() : loaded
    },
    catch: (cause) => new ConfigLoadError({ file, reason: describeCause(cause, file) })
  })

const readJson = (file: string) =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (cause) => new ConfigLoadError({ file, reason: describeCause(cause, file) })
  }).pipe(
    Effect.flatMap((text) => {
      const parsed = parseJsonc(text)
      return parsed.ok ? Effect.succeed(parsed.value) : Effect.fail(new ConfigLoadError({ file, reason: parsed.message }))
    })
  )

/**
 * Loads and decodes a config file, with the built-in plugins the composition root passes in
 * (the public `loadConfigFile` in src/Aperture.ts binds them).
 */
export const loadConfigFile = (
  file: string,
  plugins: BuiltInPlugins
): Effect.Effect<ApertureConfig, ConfigLoadError | ConfigInvalid> =>
  /\.jsonc?$/i.test(file)
    ? Effect.flatMap(readJson(file), (value) => decodeApertureJson(value, file, plugins))
    : Effect.flatMap(importModule(file), (value) => decodeConfig(value, { source: file, plugins }))

/** Finds, loads and decodes the config. */
export const loadConfig = (options: { readonly cwd: string; readonly file?: string | undefined; readonly plugins: BuiltInPlugins }) =>
  Effect.flatMap(resolveConfigPath(options.cwd, options.file), (file) => loadConfigFile(file, options.plugins)).pipe(
    Effect.withSpan("Config.load")
  )
