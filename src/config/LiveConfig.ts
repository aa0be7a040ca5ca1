/**
 * The running config, which a reload replaces (`aperture start`'s file watcher, SIGHUP,
 * `PUT /api/config`, or an embedder's {@link LiveConfig} `apply`). Each service that compiles
 * something from the config (grant patterns, identity plugins, connections, proxy routes)
 * registers how it takes a change, and swaps its compiled form once per change: a request only
 * reads the current one. A config given to `Aperture.layer` is a live config nobody changes.
 *
 * Settings read once at start (`server.*`, `cluster`, `secretKey`, `audit`, …) keep their running
 * value until a restart; {@link GatewayConfig} is that config as started.
 * @module
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { type ConfigChange, changesAnything, describeChange, planChange, settingsHash } from "./configChanges.js"
import { GatewayConfig } from "./GatewayConfig.js"
import { type ApertureConfig, formatIssue } from "./model.js"

export type { ConfigChange }

/**
 * When a service takes a change, so each finds what it relies on already changed: grants and
 * identity plugins first, then the catalog's connector list, then the connections and proxy
 * routes that report their status into it.
 */
export type ChangeStage = "policies" | "catalog" | "connections"
const STAGES: ReadonlyArray<ChangeStage> = ["policies", "catalog", "connections"]

/** What applying a config did, as logged. */
export interface AppliedConfig {
  readonly change: ConfigChange
  /** The file's hash when it came from one, else a hash of its settings. */
  readonly hash: string
  /** The one-line summary logged (`connectors added: crm; grants changed`). */
  readonly summary: string
}

export interface LiveConfigService {
  /** The config running now (a plain read, for code that runs per request). */
  readonly current: () => ApertureConfig
  /**
   * Applies a decoded config: what can change without a restart changes (connectors added,
   * removed or restarted; grants and identity plugins swapped for the next request), settings
   * that need a restart are logged and kept. One apply at a time.
   */
  readonly apply: (next: ApertureConfig, options?: { readonly hash?: string | undefined }) => Effect.Effect<AppliedConfig>
  /** Registers how a service takes a change, until the caller's scope closes. */
  readonly onChange: (stage: ChangeStage, take: (change: ConfigChange) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
}

export class LiveConfig extends Context.Tag("aperture/LiveConfig")<LiveConfig, LiveConfigService>() {}

/** A live config starting from the {@link GatewayConfig} it is given. */
export const liveConfigLayer: Layer.Layer<LiveConfig, never, GatewayConfig> = Layer.effect(
  LiveConfig,
  Effect.gen(function*() {
    let running = yield* GatewayConfig
    const takers = new Map<ChangeStage, Set<(change: ConfigChange) => Effect.Effect<void>>>(STAGES.map((s) => [s, new Set()]))
    const oneAtATime = yield* Effect.makeSemaphore(1)

    const apply = (next: ApertureConfig, options?: { readonly hash?: string | undefined }) =>
      oneAtATime.withPermits(1)(Effect.gen(function*() {
        const change = planChange(running, next)
        const hash = options?.hash ?? settingsHash(next)
        for (const setting of change.needsRestart) {
          yield* Effect.logWarning(`config: ${setting} changed; it needs a restart (the running value is kept until then)`)
        }
        // As at start: problems that do not stop the config (a connector without url stays down).
        for (const warning of next.warnings) yield* Effect.logWarning(formatIssue(warning))
        const summary = describeChange(change)
        running = change.next
        if (changesAnything(change)) {
          for (const stage of STAGES) {
            for (const take of takers.get(stage)!) yield* take(change)
          }
        }
        yield* Effect.logInfo(`config reloaded (hash ${hash.slice(0, 12)}): ${summary}`)
        return { change, hash, summary }
      })).pipe(Effect.withSpan("LiveConfig.apply"))

    const onChange = (stage: ChangeStage, take: (change: ConfigChange) => Effect.Effect<void>) =>
      Effect.acquireRelease(
        Effect.sync(() => void takers.get(stage)!.add(take)),
        () => Effect.sync(() => void takers.get(stage)!.delete(take))
      )

    return { current: () => running, apply, onChange }
  })
)

/**
 * The live config where one is provided, else the {@link GatewayConfig} as a config nobody
 * changes (a service built on its own, as tests and benchmarks do, needs only that).
 */
export const liveConfigOrStatic: Effect.Effect<LiveConfigService, never, GatewayConfig> = Effect.flatMap(
  Effect.serviceOption(LiveConfig),
  (live) =>
    live._tag === "Some" ? Effect.succeed(live.value) : Effect.map(GatewayConfig, (config): LiveConfigService => ({
      current: () => config,
      apply: () => Effect.dieMessage("this gateway's config is not live (no LiveConfig was provided)"),
      onChange: () => Effect.void
    }))
)
