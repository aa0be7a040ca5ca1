/**
 * The grant policy as a service, compiled from the config's grants and recompiled when a reload
 * changes them: what each caller may reach ({@link GrantPolicy.policyOf}, asked on every call, so
 * cached per identity) and who may read the admin surfaces. The MCP router, the HTTP proxy and
 * the admin routes all ask it; each question reads the policy compiled last (a field read).
 * @module
 */
import * as Effect from "effect/Effect"
import { liveConfigOrStatic } from "../config/LiveConfig.js"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { adminPolicy, type CallerPolicy, type Grant, PolicyCache } from "./policy.js"

const compile = (grants: ReadonlyArray<Grant>) => ({ policies: new PolicyCache(grants), admin: adminPolicy(grants) })

/**
 * The policy's questions, answered from the grants compiled last; {@link swap} compiles new ones.
 * Its functions are stable (callers may keep them) and read the current compilation per call.
 */
export const makeGrantPolicy = (grants: ReadonlyArray<Grant>) => {
  let compiled = compile(grants)
  return {
    /** The caller's patterns with `decide` bound to them; one cache lookup per request. */
    policyOf: (identity: Identity): CallerPolicy => compiled.policies.get(identity),
    /**
     * Indexes of the grants with role admin; empty when loopback callers are the admins. A
     * function, not a field: the service object is copied when built, and the grants change.
     */
    adminGrants: (): ReadonlyArray<number> => compiled.admin.adminGrants,
    /** May see every connector in full at `/api/connectors`, and read `/metrics` and `/api/config`. */
    isAdmin: (identity: Identity): boolean => compiled.admin.isAdmin(identity),
    /** May read `/metrics`: an admin, or named by a grant with `readMetrics`. */
    mayReadMetrics: (identity: Identity): boolean => compiled.admin.mayReadMetrics(identity),
    /** Compiles `next` and answers every later question from it. */
    swap: (next: ReadonlyArray<Grant>): void => {
      compiled = compile(next)
    }
  }
}

export class GrantPolicy extends Effect.Service<GrantPolicy>()("aperture/GrantPolicy", {
  scoped: Effect.gen(function*() {
    const live = yield* liveConfigOrStatic
    const policy = makeGrantPolicy(live.current().grants)
    yield* live.onChange("policies", (change) =>
      // A caller's policy remembers per connector id whether it reaches it (labels included), so a
      // connector added, changed (its labels) or removed also takes a fresh compilation.
      change.grantsChanged || change.connectors.added.length + change.connectors.changed.length + change.connectors.removed.length > 0
        ? Effect.sync(() => policy.swap(change.next.grants))
        : Effect.void)
    return policy
  })
}) {}
