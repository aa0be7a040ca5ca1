/**
 * `loopback({ login, groups? })`: every connection from 127.0.0.0/8 or ::1 is this caller.
 * The right default on a laptop; never recognises a remote caller.
 *
 * A request relayed by a proxy on this machine (`Forwarded` / `X-Forwarded-For`, as Tailscale
 * Serve and most reverse proxies add) is not a local caller: it comes from wherever the proxy
 * took it, so it is left to the other plugins (e.g. `trustedHeaders`).
 * @module
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { defineIdentityPlugin, type Identity, LocalOperatorPlugin, Principal } from "../../src/plugin/IdentityPlugin.js"

export const LoopbackOptions = Schema.Struct({
  login: Principal,
  groups: Schema.optionalWith(Schema.Array(Principal), { default: () => [] })
})

/** True for IPv4 127.0.0.0/8, IPv6 ::1 and IPv4-mapped 127.x addresses. */
export const isLoopbackAddress = (address: string | undefined): boolean => {
  if (address === undefined) return false
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4)) return true
  return address === "::1" || address === "0:0:0:0:0:0:0:1"
}

export const loopback = defineIdentityPlugin({
  name: "loopback",
  // Its callers are the default admins (src/grants/policy.ts), by this mark rather than the name.
  [LocalOperatorPlugin]: true,
  options: LoopbackOptions,
  // Read for their absence (a relayed request is not local); the proxy sets its own X-Forwarded-For.
  consumes: ["x-forwarded-for", "forwarded"],
  make: ({ login, groups }) => {
    const identity: Identity = { login, groups, tags: [], via: "loopback" }
    return Effect.succeed({
      identify: (request) =>
        Effect.succeed(
          isLoopbackAddress(request.remoteAddress) &&
            request.headers["x-forwarded-for"] === undefined && request.headers["forwarded"] === undefined
            ? identity
            : undefined
        )
    })
  },
  describe: (options) =>
    `loopback (login ${options.login}${options.groups?.length ? `, groups ${options.groups.join(",")}` : ""})`
})
