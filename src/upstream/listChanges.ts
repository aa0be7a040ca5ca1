/**
 * How a connector learns that a 2026-era upstream's lists changed: a `subscriptions/listen`
 * stream, opened once the connector is ready (readiness never waits on it: an upstream whose
 * stream the gateway cannot read must still serve its tools), reopened when the upstream ends
 * it (and the lists re-read, for what changed meanwhile), and replaced by re-reading the lists
 * on a timer when the upstream does not acknowledge one.
 * 2025-era upstreams send `list_changed` unsolicited: handlers on the client (`connection.ts`).
 * @module
 */
import type { Client } from "@modelcontextprotocol/client"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { describeError } from "../catalog/UpstreamError.js"

/** How often the lists are re-read when the upstream keeps no listen stream open. */
export const LIST_POLL_INTERVAL = Duration.seconds(30)

/** Waits before reopening a stream the upstream ended: 1 s doubling to 30 s; back to 1 s after a minute open. */
const REOPEN_FIRST = Duration.seconds(1)
const REOPEN_MAX = Duration.seconds(30)
const HEALTHY_AFTER = Duration.minutes(1)

/** The lists an upstream can say changed. */
export type ListKind = "tools" | "prompts" | "resources"

const ALL_LISTS: ReadonlyArray<ListKind> = ["tools", "prompts", "resources"]

/**
 * Follows a modern upstream's list changes until interrupted, reporting each changed list to
 * `changed`. Does nothing on a 2025-era connection, or when the upstream announces no list changes.
 */
export const followListChanges = (
  client: Client,
  connectorId: string,
  timeout: Duration.Duration,
  changed: (list: ListKind) => void
): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (client.getProtocolEra() !== "modern") return
    const capabilities = client.getServerCapabilities() ?? {}
    const filter = {
      ...(capabilities.tools?.listChanged && { toolsListChanged: true }),
      ...(capabilities.prompts?.listChanged && { promptsListChanged: true }),
      ...(capabilities.resources?.listChanged && { resourcesListChanged: true })
    }
    if (Object.keys(filter).length === 0) return
    const everyList = () => {
      for (const list of ALL_LISTS) changed(list)
    }
    let reopenDelay = REOPEN_FIRST
    for (let opened = 0;; opened++) {
      const listening = yield* Effect.either(Effect.tryPromise({
        try: (signal) => client.listen(filter, { timeout: Duration.toMillis(timeout), signal }),
        catch: (error) => error
      }))
      if (listening._tag === "Left") {
        yield* Effect.logWarning(
          `connector ${connectorId}: no list_changed subscription (${describeError(listening.left)}); ` +
            `its lists are re-read every ${Duration.format(LIST_POLL_INTERVAL)} instead`
        )
        return yield* Effect.forever(Effect.zipRight(Effect.sleep(LIST_POLL_INTERVAL), Effect.sync(everyList)))
      }
      const subscription = listening.right
      const since = Date.now()
      // Whatever changed while no stream was open went unannounced.
      if (opened > 0) everyList()
      const ending = yield* Effect.promise(() => subscription.closed).pipe(
        Effect.onInterrupt(() => Effect.promise(() => subscription.close()))
      )
      if (ending === "local") return
      if (Date.now() - since >= Duration.toMillis(HEALTHY_AFTER)) reopenDelay = REOPEN_FIRST
      yield* Effect.logDebug(`connector ${connectorId}: the upstream ended the list_changed subscription (${ending}); reopening in ${Duration.format(reopenDelay)}`)
      yield* Effect.sleep(reopenDelay)
      reopenDelay = Duration.min(Duration.times(reopenDelay, 2), REOPEN_MAX)
    }
  })
