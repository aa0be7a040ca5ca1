/**
 * The file `aperture start` loaded its config from, as the file watcher, SIGHUP and
 * `GET/PUT /api/config` see it: its bytes and their hash, how to decode it, and (for a JSON or
 * JSONC file) an atomic write. Only `aperture start` provides it; an embedder's gateway has no
 * config file and its `/api/config` says so.
 * @module
 */
import { createHash, randomUUID } from "node:crypto"
import { readFile, realpath, rename, rm, stat, writeFile } from "node:fs/promises"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { decodeApertureJson } from "./json.js"
import type { BuiltInPlugins } from "./jsonAuth.js"
import { parseJsonc } from "./jsonc.js"
import { type ConfigError, ConfigLoadError, loadConfigFile } from "./load.js"
import type { ApertureConfig } from "./model.js"

/** The hash `GET /api/config` answers and `PUT` expects back: SHA-256 of the file's bytes, hex. */
export const hashOf = (text: string): string => createHash("sha256").update(text).digest("hex")

export interface ConfigFileContents {
  readonly text: string
  readonly hash: string
}

export interface ConfigFileService {
  readonly path: string
  /** A JSON or JSONC file, which `PUT /api/config` may rewrite; a TS config is edited in an editor. */
  readonly editable: boolean
  readonly read: Effect.Effect<ConfigFileContents, ConfigLoadError>
  /** Loads and decodes the file as it is now (a TS config through jiti), with `aperture start`'s overrides. */
  readonly load: Effect.Effect<ApertureConfig, ConfigError>
  /** Decodes JSON in the Aperture shape, with the same overrides (what a PUT would apply). */
  readonly decodeJson: (value: unknown) => Effect.Effect<ApertureConfig, ConfigError>
  /** Writes `text` atomically (a temporary file beside the real file, then a rename over it: a symlink stays); answers its hash. */
  readonly write: (text: string) => Effect.Effect<string, ConfigLoadError>
  /** The hash of the file as last applied (the watcher skips a change to that same content). */
  readonly appliedHash: () => string | undefined
  readonly setAppliedHash: (hash: string) => void
  /** Runs `effect` alone: a reload and a PUT never read, apply and write over each other. */
  readonly exclusive: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export class ConfigFile extends Context.Tag("aperture/ConfigFile")<ConfigFile, ConfigFileService>() {}

export const makeConfigFile = (options: {
  readonly path: string
  readonly plugins: BuiltInPlugins
  /** What `aperture start` changes in every config it loads (`--host`, `--port`). */
  readonly overrides: (config: ApertureConfig) => ApertureConfig
  /** The hash of the content the gateway started with. */
  readonly startedWith: string | undefined
}): Effect.Effect<ConfigFileService> =>
  Effect.gen(function*() {
    const file = options.path
    const editable = /\.jsonc?$/i.test(file)
    let applied = options.startedWith
    const lock = yield* Effect.makeSemaphore(1)
    const failed = (cause: unknown) => new ConfigLoadError({ file, reason: cause instanceof Error ? cause.message : String(cause) })

    const read = Effect.tryPromise({ try: () => readFile(file, "utf8"), catch: failed }).pipe(
      Effect.map((text) => ({ text, hash: hashOf(text) }))
    )

    const write = (text: string) =>
      Effect.tryPromise({
        try: async () => {
          // A symlinked config (a dotfiles repo, a mounted ConfigMap) stays a link: the new
          // content replaces the file it points to, not the link.
          const target = await realpath(file).catch(() => file)
          // In the same folder, so the rename replaces the file in one step (never half-written).
          const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${randomUUID()}.tmp`)
          try {
            // The file keeps its permissions (it may hold secrets).
            const mode = await stat(target).then((s) => s.mode & 0o777, () => 0o600)
            await writeFile(temporary, text, { mode })
            await rename(temporary, target)
          } catch (error) {
            await rm(temporary, { force: true })
            throw error
          }
          return hashOf(text)
        },
        catch: failed
      })

    return {
      path: file,
      editable,
      read,
      load: Effect.map(loadConfigFile(file, options.plugins), options.overrides),
      decodeJson: (value) => Effect.map(decodeApertureJson(value, file, options.plugins), options.overrides),
      write,
      appliedHash: () => applied,
      setAppliedHash: (hash) => {
        applied = hash
      },
      exclusive: (effect) => lock.withPermits(1)(effect)
    }
  })

/** Reads a JSON/JSONC config's value (comments dropped). */
export const parseConfigText = (file: string, text: string): Effect.Effect<unknown, ConfigLoadError> => {
  const parsed = parseJsonc(text)
  return parsed.ok ? Effect.succeed(parsed.value) : Effect.fail(new ConfigLoadError({ file, reason: parsed.message }))
}
