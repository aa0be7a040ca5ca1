/**
 * Each connector's last status changes, with when and why, for the status page: fed by the
 * catalog's changes (one fiber for the gateway's life), never by the call path. Bounded: the
 * last {@link HISTORY_LENGTH} changes per connector.
 * @module
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Catalog } from "./Catalog.js"
import type { ConnectorStatus } from "./index.js"

/** How many changes are kept per connector. */
export const HISTORY_LENGTH = 20

/** One change of a connector's status (or of its reason, at the same status). */
export interface StatusChange {
  /** Epoch ms. */
  readonly at: number
  readonly status: ConnectorStatus
  /** Why it is not ready (the catalog's error; never a secret). */
  readonly reason?: string
}

export class StatusHistory extends Effect.Service<StatusHistory>()("aperture/StatusHistory", {
  scoped: Effect.gen(function*() {
    const catalog = yield* Catalog
    const history = new Map<string, Array<StatusChange>>()

    const record = (id: string, change: StatusChange) => {
      let changes = history.get(id)
      if (changes === undefined) history.set(id, changes = [])
      const last = changes[changes.length - 1]
      if (last !== undefined && last.status === change.status && last.reason === change.reason) return
      changes.push(change)
      if (changes.length > HISTORY_LENGTH) changes.shift()
    }

    // `changes` starts with the current snapshot, so the first entry is each connector's start.
    yield* catalog.changes.pipe(
      Stream.runForEach((snapshot) =>
        Effect.sync(() => {
          for (const state of snapshot.states) {
            record(state.connector.id, {
              at: state.since,
              status: state.status,
              ...(state.error !== undefined && { reason: state.error })
            })
          }
          // A connector removed from the config (hot reload) takes its history with it.
          if (history.size > snapshot.states.length) {
            for (const id of history.keys()) if (!snapshot.byId.has(id)) history.delete(id)
          }
        })
      ),
      Effect.forkScoped
    )

    return {
      /** A connector's changes, oldest first (empty for an unknown id). */
      of: (id: string): ReadonlyArray<StatusChange> => history.get(id)?.slice() ?? []
    } as const
  })
}) {}
