/**
 * A call, read or get whose name is missing from the catalog because its connector is not
 * serving (misconfigured, down, connecting, needs auth): the catalog lists only ready connectors'
 * names, so without this the line read as a grant denial of an unknown name (`decision: denied,
 * connector: null`) when the caller was allowed and the connector was the problem.
 * @module
 */
import type { CatalogSnapshot } from "../catalog/Catalog.js"
import { splitPrefixedUri } from "../catalog/names.js"
import type { Category } from "../config/grantPattern.js"
import type { CallerPolicy } from "../grants/policy.js"
import type { Identity } from "../plugin/IdentityPlugin.js"
import type { AuditEvent } from "./AuditLog.js"

/** The connector a prefixed tool or prompt name (`<id>_<name>`) names, and the name upstream. */
const splitPrefixedName = (name: string): { readonly connectorId: string; readonly uri: string } | undefined => {
  const underscore = name.indexOf("_")
  return underscore <= 0 ? undefined : { connectorId: name.slice(0, underscore), uri: name.slice(underscore + 1) }
}

/**
 * The audit event for `name` when it names (by its prefix) a connector that is not ready and a
 * grant of the caller's covers it: allowed, outcome `unavailable`, with the connector's status and
 * error as the reason. `undefined` otherwise: an unknown or denied name stays a denial.
 */
export const unservedEvent = (
  snapshot: CatalogSnapshot,
  policy: CallerPolicy,
  identity: Identity,
  category: Category,
  name: unknown,
  startedAt: number
): AuditEvent | undefined => {
  if (typeof name !== "string") return undefined
  const named = category === "resources"
    ? splitPrefixedUri(name)
    : category === "tools" || category === "prompts" ? splitPrefixedName(name) : undefined
  if (named === undefined) return undefined
  const state = snapshot.byId.get(named.connectorId)
  if (state === undefined || state.status === "ready" || state.connector.kind === "http" || !state.connector.prefix) {
    return undefined
  }
  const { connector } = state
  const grant = policy.decide({ connectorId: connector.id, labels: connector.labels, category, name: named.uri })
  if (grant === undefined) return undefined
  return {
    identity,
    connector: connector.id,
    category,
    exposed: name,
    upstream: named.uri,
    grant,
    startedAt,
    outcome: "unavailable",
    reason: `connector ${connector.id} is ${state.status}${state.error === undefined ? "" : `: ${state.error}`}`
  }
}
