/**
 * The grant decision for one catalog entry: the same `decide` a call asks, with the entry's
 * connector, category and upstream name as the target. Lists, calls and `/api/connectors` use it.
 * @module
 */
import type { CallerPolicy, Decision } from "../grants/policy.js"
import type { IndexEntry } from "./index.js"

/** The grant that lets this caller see and use one catalog entry, or `undefined`. */
export const decideEntry = (policy: CallerPolicy, entry: IndexEntry): Decision | undefined =>
  policy.decide({
    connectorId: entry.connector.id,
    labels: entry.connector.labels,
    category: entry.category,
    name: entry.upstreamName
  })

export const allowed = (policy: CallerPolicy, entry: IndexEntry) => decideEntry(policy, entry) !== undefined
