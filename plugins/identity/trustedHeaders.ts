/**
 * `trustedHeaders({ from? })`: the caller named by Tailscale Serve's `Tailscale-User-Login`
 * (and `Tailscale-User-Name`) headers. Serve sets them on the requests it proxies from your
 * tailnet, and connects from this machine; so the headers are believed only from loopback, or
 * from the address ranges in `from` (a proxy you run elsewhere). From any other address they
 * are ignored, so a remote caller cannot name itself.
 * @module
 */
import { BlockList, isIP } from "node:net"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { defineIdentityPlugin, IdentityRejected } from "../../src/plugin/IdentityPlugin.js"

/** An address range: `10.0.0.0/8`, `fd7a:115c:a1e0::/48`, or one address. */
export const Cidr = Schema.String.pipe(
  Schema.filter((s) => parseCidr(s) !== undefined || `invalid address range "${s}": expected an address or address/prefix, e.g. 10.0.0.0/8`)
)

interface ParsedCidr {
  readonly address: string
  readonly prefix: number
  readonly family: "ipv4" | "ipv6"
}

const parseCidr = (s: string): ParsedCidr | undefined => {
  const [address, prefixText, ...rest] = s.split("/")
  if (address === undefined || rest.length > 0) return undefined
  const version = isIP(address)
  if (version === 0) return undefined
  const max = version === 4 ? 32 : 128
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN
  if (!(prefix >= 0 && prefix <= max)) return undefined
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" }
}

export const LOOPBACK_RANGES: ReadonlyArray<string> = ["127.0.0.0/8", "::1/128"]

/** The set of addresses `ranges` cover (Node's BlockList: no hand-rolled IP parsing; IPv4-mapped IPv6 included). */
export const addressSet = (ranges: ReadonlyArray<string>): BlockList => {
  const set = new BlockList()
  for (const range of ranges) {
    const cidr = parseCidr(range)
    if (cidr !== undefined) set.addSubnet(cidr.address, cidr.prefix, cidr.family)
  }
  return set
}

export const isFrom = (set: BlockList, address: string | undefined): boolean => {
  if (address === undefined) return false
  const version = isIP(address)
  return version !== 0 && set.check(address, version === 4 ? "ipv4" : "ipv6")
}

/**
 * Decodes an RFC 2047 encoded word (`=?utf-8?q?…?=` / `=?utf-8?b?…?=`), which Tailscale uses
 * for names that are not ASCII. Anything else is returned as it is.
 */
export const decodeEncodedWord = (value: string): string =>
  value.replace(/=\?utf-8\?([qb])\?([^?]*)\?=/gi, (_all, encoding: string, text: string) => {
    if (encoding.toLowerCase() === "b") return Buffer.from(text, "base64").toString("utf8")
    const bytes = text.replace(/_/g, " ").replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    return Buffer.from(bytes, "latin1").toString("utf8")
  })

const LOGIN = /^[^\s:]+$/

export const TrustedHeadersOptions = Schema.Struct({
  from: Schema.optionalWith(Schema.Array(Cidr), { exact: true })
})

const trustedHeadersPlugin = defineIdentityPlugin({
  name: "trustedHeaders",
  options: TrustedHeadersOptions,
  // Every identity header Tailscale Serve adds, the profile picture too: none is the upstream's business.
  consumes: ["tailscale-user-login", "tailscale-user-name", "tailscale-user-profile-pic"],
  make: ({ from }) => {
    const trusted = addressSet(from ?? LOOPBACK_RANGES)
    return Effect.succeed({
      identify: (request) => {
        const login = request.headers["tailscale-user-login"]
        if (login === undefined || !isFrom(trusted, request.remoteAddress)) return Effect.succeed(undefined)
        if (!LOGIN.test(login)) {
          return Effect.fail(new IdentityRejected({ plugin: "trustedHeaders", message: "Tailscale-User-Login is not a login" }))
        }
        const name = request.headers["tailscale-user-name"]
        return Effect.succeed({
          login,
          groups: [],
          tags: [],
          via: "trustedHeaders",
          ...(name !== undefined && name !== "" && { displayName: decodeEncodedWord(name) })
        })
      }
    })
  },
  describe: (options) => `trustedHeaders (Tailscale-User-Login from ${(options.from ?? LOOPBACK_RANGES).join(", ")})`
})

/** `trustedHeaders()` or `trustedHeaders({ from: ["10.0.0.0/8"] })`. */
export const trustedHeaders = (options: typeof TrustedHeadersOptions.Encoded = {}) => trustedHeadersPlugin(options)
