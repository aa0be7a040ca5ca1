/**
 * `aperture start` follows its config file: a change to it (seen by watching the file's folder,
 * as editors replace a file by renaming a new one over it) or a SIGHUP reloads it, once things
 * have been quiet for {@link DEBOUNCE}. A valid config is applied ({@link LiveConfig} `apply`);
 * an invalid one is refused with every problem and its path, and the running config stays.
 * @module
 */
import { watch } from "node:fs"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import { ConfigFile, parseConfigText } from "../config/ConfigFile.js"
import type { ConfigError } from "../config/load.js"
import { LiveConfig } from "../config/LiveConfig.js"
import { formatIssue } from "../config/model.js"

/** How long the file must stay unchanged before it is read: an editor's save is several events. */
export const DEBOUNCE = Duration.millis(300)

type Trigger = "changed" | "hangup"

/** Logs why a config was refused, as `aperture check` prints it, and that the running one stays. */
export const logRefused = (error: ConfigError) =>
  error._tag === "ConfigInvalid"
    ? Effect.gen(function*() {
      yield* Effect.logError(
        `config not reloaded: invalid config${error.source ? ` ${error.source}` : ""} (${error.issues.length} ${error.issues.length === 1 ? "problem" : "problems"}); the running config is kept`
      )
      for (const issue of error.issues) yield* Effect.logError(`  ${formatIssue(issue)}`)
    })
    : Effect.logError(`config not reloaded: ${error.message}; the running config is kept`)

/**
 * Reads the file and applies it unless it is the content applied last (a PUT's own write, or a
 * save that changed nothing); `force` (SIGHUP) applies it anyway.
 */
export const reloadConfigFile = (force: boolean) =>
  Effect.gen(function*() {
    const file = yield* ConfigFile
    const live = yield* LiveConfig
    yield* file.exclusive(Effect.gen(function*() {
      const { hash, text } = yield* file.read
      if (!force && hash === file.appliedHash()) return
      const decoded = yield* (file.editable ? Effect.flatMap(parseConfigText(file.path, text), file.decodeJson) : file.load)
      yield* live.apply(decoded, { hash })
      file.setAppliedHash(hash)
    }).pipe(Effect.catchAll(logRefused)))
  }).pipe(Effect.withSpan("ConfigWatch.reload"))

/** Watches the config file and takes SIGHUP for as long as the gateway runs. */
export const ConfigWatch: Layer.Layer<never, never, ConfigFile | LiveConfig> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const file = yield* ConfigFile
    const triggers = yield* Queue.unbounded<Trigger>()
    const folder = path.dirname(file.path)
    const name = path.basename(file.path)
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const watcher = watch(folder, { persistent: false }, (_event, changed) => {
          // Some platforms name no file; then any change in the folder is looked at (the hash decides).
          if (changed === null || changed.toString() === name) Queue.unsafeOffer(triggers, "changed")
        })
        watcher.on("error", () => {})
        return watcher
      }),
      (watcher) => Effect.sync(() => watcher.close())
    )
    const onHangup = () => Queue.unsafeOffer(triggers, "hangup")
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("SIGHUP", onHangup)),
      () => Effect.sync(() => process.off("SIGHUP", onHangup))
    )
    const reloads = Effect.gen(function*() {
      while (true) {
        let force = (yield* Queue.take(triggers)) === "hangup"
        // Until DEBOUNCE passes with no further event.
        while (true) {
          const next = yield* Queue.take(triggers).pipe(Effect.timeoutOption(DEBOUNCE))
          if (Option.isNone(next)) break
          force ||= next.value === "hangup"
        }
        yield* reloadConfigFile(force)
      }
    })
    yield* Effect.forkScoped(Effect.annotateLogs(reloads, "config", file.path))
    yield* Effect.logDebug(`watching ${file.path} for changes (and SIGHUP)`)
  })
)
