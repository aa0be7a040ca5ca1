/**
 * The SSRF guard for HTTP connectors: unless a connector sets `allowPrivate`, its upstream may
 * not be a loopback, link-local or unspecified address (the gateway's own machine, cloud
 * metadata at 169.254.169.254). The check runs on the addresses DNS returned, inside the
 * socket's own lookup, so the address checked is the address connected to (no re-resolution
 * between check and connect).
 * @module
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns"
import { BlockList, isIP, type LookupFunction } from "node:net"

const blocked = new BlockList()
blocked.addSubnet("127.0.0.0", 8, "ipv4") // loopback
blocked.addSubnet("169.254.0.0", 16, "ipv4") // link-local, cloud metadata
blocked.addSubnet("0.0.0.0", 8, "ipv4") // "this network": 0.0.0.0 reaches the local host
blocked.addAddress("::1", "ipv6") // loopback
blocked.addAddress("::", "ipv6") // unspecified
blocked.addSubnet("fe80::", 10, "ipv6") // link-local
blocked.addAddress("fd00:ec2::254", "ipv6") // AWS metadata over IPv6

/** Why an address may not be an upstream, or `undefined` when it may. IPv4-mapped IPv6 counts as IPv4. */
export const privateAddressKind = (address: string): string | undefined => {
  const family = isIP(address)
  if (family === 0) return undefined
  if (!blocked.check(address, family === 4 ? "ipv4" : "ipv6")) return undefined
  const v4 = family === 4 ? address : address.toLowerCase().startsWith("::ffff:") ? address.slice(7) : undefined
  if (v4 !== undefined && isIP(v4) === 4) {
    if (v4.startsWith("127.")) return "loopback"
    if (v4.startsWith("169.254.")) return "link-local"
    return "unspecified"
  }
  const lower = address.toLowerCase()
  if (lower === "::1") return "loopback"
  if (lower === "::") return "unspecified"
  return "link-local"
}

/** Raised inside the connection attempt when the upstream resolves to a refused address. */
export class PrivateAddressRefused extends Error {
  readonly code = "APERTURE_PRIVATE_ADDRESS"
  constructor(readonly hostname: string, readonly address: string, readonly kind: string) {
    super(`${hostname} resolves to ${address} (${kind}); HTTP connectors may not reach ${kind} addresses unless allowPrivate: true`)
    this.name = "PrivateAddressRefused"
  }
}

/** The hostname of a URL as `net.connect` wants it (IPv6 literals without brackets). */
export const connectHostname = (url: URL): string =>
  url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname

/** Checks an IP literal before connecting (Node does not run `lookup` for those). */
export const refuseLiteral = (hostname: string): PrivateAddressRefused | undefined => {
  const kind = privateAddressKind(hostname)
  return kind === undefined ? undefined : new PrivateAddressRefused(hostname, hostname, kind)
}

/**
 * A `lookup` for sockets that fails when any resolved address is refused: one bad answer among
 * several (a name that resolves to both a public and 127.0.0.1) refuses the whole name.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: Array<LookupAddress>) => {
    if (error) return (callback as (e: NodeJS.ErrnoException) => void)(error)
    for (const { address } of addresses) {
      const kind = privateAddressKind(address)
      if (kind !== undefined) {
        return (callback as (e: NodeJS.ErrnoException) => void)(
          new PrivateAddressRefused(hostname, address, kind) as unknown as NodeJS.ErrnoException
        )
      }
    }
    if (options.all === true) return (callback as (e: null, a: Array<LookupAddress>) => void)(null, addresses)
    const first = addresses[0]
    if (first === undefined) {
      const notFound = Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" })
      return (callback as (e: NodeJS.ErrnoException) => void)(notFound)
    }
    return (callback as (e: null, a: string, f: number) => void)(null, first.address, first.family)
  })
}
