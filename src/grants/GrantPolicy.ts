/**
 * The grant policy as a service, built once from the config's grants: what each caller may
 * reach ({@link GrantPolicy.policyOf}, asked on every call, so cached per identity) and who may
 * read the admin surfaces. The MCP router, the HTTP proxy and the admin routes all ask it.
 * @module
 */
import * as Effect from "effect/Effect"
import { GatewayConfig } from "../config/GatewayConfig.js"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { adminPolicy, type CallerPolicy, type Grant, PolicyCache } from "./policy.js"

export const makeGrantPolicy = (grants: ReadonlyArray<Grant>) => {
  const policies = new PolicyCache(grants)
  const admin = adminPolicy(grants)
  return {
    /** The caller's patterns with `decide` bound to them; one cache lookup per request. */
    policyOf: (identity: Identity): CallerPolicy => policies.get(identity),
    /** Indexes of the grants with role admin; empty when loopback callers are the admins. */
    adminGrants: admin.adminGrants,
    /** May see every connector in full at `/api/connectors`, and read `/metrics`. */
    isAdmin: admin.isAdmin,
    /** May read `/metrics`: an admin, or named by a grant with `readMetrics`. */
    mayReadMetrics: admin.mayReadMetrics
  } as const
}

export class GrantPolicy extends Effect.Service<GrantPolicy>()("aperture/GrantPolicy", {
  effect: Effect.map(GatewayConfig, (config) => makeGrantPolicy(config.grants))
}) {}
