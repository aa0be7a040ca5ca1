/**
 * Every connector's status and capabilities, with the exposed-name index, as one
 * `SubscriptionRef`. Connector fibers write it; `/v1/mcp` and the admin API read it. Lists are
 * served from here: a `tools/list` never reaches an upstream.
 * @module
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { liveConfigOrStatic } from "../config/LiveConfig.js"
import type { Connector } from "../config/model.js"
import { boundedErrorText, MAX_ERROR_TEXT_CHARS } from "./UpstreamError.js"
import { buildIndex, type CatalogIndex, type ConnectorState, emptyLists } from "./index.js"

export interface CatalogSnapshot {
  /** Increases with every change; per-caller views are cached against it. */
  readonly version: number
  readonly states: ReadonlyArray<ConnectorState>
  readonly byId: ReadonlyMap<string, ConnectorState>
  readonly index: CatalogIndex
}

const initialState = (connector: Connector, now: number): ConnectorState => ({
  connector,
  status: "connecting",
  error: undefined,
  since: now,
  attempted: false,
  lists: emptyLists,
  upstream: undefined
})

const snapshotOf = (version: number, states: ReadonlyArray<ConnectorState>, index: CatalogIndex): CatalogSnapshot => ({
  version,
  states,
  byId: new Map(states.map((s) => [s.connector.id, s])),
  index
})

export class Catalog extends Effect.Service<Catalog>()("aperture/Catalog", {
  scoped: Effect.gen(function*() {
    const live = yield* liveConfigOrStatic
    const config = live.current()
    const now = yield* Clock.currentTimeMillis
    const states = config.connectors.map((c) => initialState(c, now))
    const ref = yield* SubscriptionRef.make(snapshotOf(1, states, buildIndex(states)))
    // The latest snapshot, readable without running an effect: request handlers read it per call.
    let latest = yield* SubscriptionRef.get(ref)

    const logTransition = (before: ConnectorState, after: ConnectorState) => {
      if (before.status === after.status && before.error === after.error) return Effect.void
      const id = after.connector.id
      if (after.status === "ready" && after.connector.kind === "http") return Effect.logInfo(`connector ${id} ready`)
      if (after.status === "ready") {
        const { prompts, resources, templates, tools } = after.lists
        return Effect.logInfo(
          `connector ${id} ready: ${tools.length} tools, ${prompts.length} prompts, ${resources.length} resources, ${templates.length} templates`
        )
      }
      if (after.status === "connecting") return Effect.logDebug(`connector ${id} connecting`)
      return Effect.logWarning(`connector ${id} ${after.status}: ${after.error ?? "unknown error"}`)
    }

    const logCollisions = (before: CatalogIndex, after: CatalogIndex) =>
      Effect.forEach(after.collisions, ([id, messages]) =>
        Equal.equals(before.collisions.get(id)?.join("\n"), messages.join("\n"))
          ? Effect.void
          : Effect.forEach(messages, (m) => Effect.logError(`connector ${id}: ${m}`)), { discard: true })

    /** Applies `f` to one connector's state; rebuilds the index only when what it exposes changed. */
    const update = Effect.fn("Catalog.update")(function*(id: string, f: (state: ConnectorState) => ConnectorState) {
      const at = yield* Clock.currentTimeMillis
      let transition: readonly [ConnectorState, ConnectorState] | undefined
      let indexes: readonly [CatalogIndex, CatalogIndex] | undefined
      yield* SubscriptionRef.update(ref, (snapshot) => {
        const before = snapshot.byId.get(id)
        if (before === undefined) return snapshot
        const updated = f(before)
        if (updated === before) return snapshot
        // Whatever wrote it, a stored (and logged, and served) error stays a few KB.
        const changed = updated.error !== undefined && updated.error.length > MAX_ERROR_TEXT_CHARS
          ? { ...updated, error: boundedErrorText(updated.error) }
          : updated
        const after = changed.status === before.status && changed.error === before.error
          ? changed
          : { ...changed, since: at }
        transition = [before, after]
        const states = snapshot.states.map((s) => (s.connector.id === id ? after : s))
        const exposureChanged = before.lists !== after.lists || (before.status === "ready") !== (after.status === "ready")
        const index = exposureChanged ? buildIndex(states) : snapshot.index
        indexes = [snapshot.index, index]
        latest = snapshotOf(snapshot.version + 1, states, index)
        return latest
      })
      if (transition) yield* logTransition(...transition)
      if (indexes && indexes[0] !== indexes[1]) yield* logCollisions(...indexes)
    })

    /**
     * A reload's connectors: unchanged ones keep their state, added and changed ones start as
     * `connecting`, removed ones are gone. The version moves on even when only grants changed,
     * so sessions compare each caller's view again and say `list_changed` where it changed.
     */
    yield* live.onChange("catalog", (change) =>
      Effect.gen(function*() {
        const at = yield* Clock.currentTimeMillis
        const restarted = new Set(change.connectors.changed.map((c) => c.id))
        yield* SubscriptionRef.update(ref, (snapshot) => {
          const states = change.next.connectors.map((connector) => {
            const before = snapshot.byId.get(connector.id)
            return before === undefined || restarted.has(connector.id) ? initialState(connector, at) : before
          })
          latest = snapshotOf(snapshot.version + 1, states, buildIndex(states))
          return latest
        })
      }))

    return {
      get: SubscriptionRef.get(ref),
      /** The latest snapshot, synchronously (for the request hot path). */
      current: (): CatalogSnapshot => latest,
      changes: ref.changes,
      update
    } as const
  })
}) {}
