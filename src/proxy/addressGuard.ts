/**
 * The SSRF guard for HTTP connectors: unless a connector sets `allowPrivate`, its upstream may
 * not be a loopback, link-local or unspecified address (the gateway's own machine, cloud
 * metadata at 169.254.169.254 and fd00:ec2::254), in IPv4-mapped IPv6 spellings too. The check runs on the addresses DNS returned, inside the
 * socket's own lookup, so the address checked is the address connected to (no re-resolution
 * between check and connect).
 * @module
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns"
import { BlockList, isIP, type LookupFunction } from "node:net"

/** The refused ranges, each with the name a refusal gives it. */
const refusedRanges = (() => {
  const loopback = new BlockList()
  loopback.addSubnet("127.0.0.0", 8, "ipv4")
  loopback.addAddress("::1", "ipv6")
  const linkLocal = new BlockList()
  linkLocal.addSubnet("169.254.0.0", 16, "ipv4") // cloud metadata at 169.254.169.254
  linkLocal.addSubnet("fe80::", 10, "ipv6")
  const unspecified = new BlockList()
  unspecified.addSubnet("0.0.0.0", 8, "ipv4") // "this network": 0.0.0.0 reaches the local host
  unspecified.addAddress("::", "ipv6")
  const metadata = new BlockList()
  metadata.addAddress("fd00:ec2::254", "ipv6") // AWS metadata over IPv6 (a unique-local address)
  return [
    ["loopback", loopback],
    ["link-local", linkLocal],
    ["unspecified", unspecified],
    ["cloud metadata", metadata]
  ] as const
})()

const kindOf = (address: string, family: "ipv4" | "ipv6"): string | undefined => {
  for (const [kind, range] of refusedRanges) if (range.check(address, family)) return kind
  return undefined
}

/**
 * The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:0:0/96`), in any spelling
 * (`::ffff:127.0.0.1`, `0:0:0:0:0:ffff:7f00:1`): the URL parser's canonical form is always
 * `::ffff:hhhh:hhhh`. `undefined` for any other address.
 */
const mappedIPv4 = (ipv6: string): string | undefined => {
  let canonical: string
  try {
    canonical = new URL(`http://[${ipv6}]/`).hostname
  } catch {
    return undefined
  }
  const hex = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(canonical)
  if (hex === null) return undefined
  const high = parseInt(hex[1] as string, 16)
  const low = parseInt(hex[2] as string, 16)
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`
}

/**
 * Why an address may not be an upstream, or `undefined` when it may. An IPv4-mapped IPv6
 * address is checked as the IPv4 address it carries, and named so (`IPv4-mapped loopback`).
 */
export const privateAddressKind = (address: string): string | undefined => {
  const family = isIP(address)
  if (family === 0) return undefined
  if (family === 4) return kindOf(address, "ipv4")
  const mapped = mappedIPv4(address)
  if (mapped !== undefined) {
    const kind = kindOf(mapped, "ipv4")
    return kind === undefined ? undefined : `IPv4-mapped ${kind}`
  }
  return kindOf(address, "ipv6")
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
