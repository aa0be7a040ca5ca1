/**
 * Every transport the gateway connects to MCP upstreams over: `connection.ts` asks here which one
 * a connector uses. Adding a transport is a file beside this one, its entry below, and its
 * scheme in `config/transportSchemes.ts` (which `mcp({ url })` decoding accepts; checked against
 * this list when compiling).
 * @module
 */
import type { McpSpeakingConnector } from "../../config/model.js"
import type { McpUrlScheme } from "../../config/transportSchemes.js"
import { sse } from "./sse.js"
import { stdio } from "./stdio.js"
import { streamableHttp } from "./streamableHttp.js"
import type { OpenedTransport, TransportContext, TransportDefinition, UrlTransport } from "./transport.js"
import { webSocket } from "./webSocket.js"

/** The transports an `mcp({ url })` connector reaches by its URL's scheme (or as a fallback). */
export const URL_TRANSPORTS = [streamableHttp, sse, webSocket] as const

/** A `stdio()` connector's. */
export const PROCESS_TRANSPORT = stdio

export type TransportName = typeof URL_TRANSPORTS[number]["name"] | typeof PROCESS_TRANSPORT.name

// Checked when compiling: every scheme config accepts has a transport (the reverse holds by the
// type of `schemes`), and every fallback names a registered transport.
type Registered = typeof URL_TRANSPORTS[number]
const everySchemeHasATransport: Exclude<McpUrlScheme, Registered["schemes"][number]> extends never ? true : never = true
const everyFallbackIsRegistered: Exclude<NonNullable<Extract<Registered, { fallback: unknown }>["fallback"]>["to"], TransportName> extends never ? true : never = true
void everySchemeHasATransport, everyFallbackIsRegistered

const byName: ReadonlyMap<string, UrlTransport> = new Map(URL_TRANSPORTS.map((transport) => [transport.name, transport]))
const byScheme: ReadonlyMap<string, UrlTransport> = new Map(
  URL_TRANSPORTS.flatMap((transport) => transport.schemes.map((scheme) => [scheme, transport] as const))
)

/** A transport bound to one connector: what it is, and how to open it for this connector. */
export interface TransportChoice {
  readonly definition: TransportDefinition<never>
  readonly name: TransportName
  readonly open: (context: TransportContext) => OpenedTransport
}

const boundToUrl = (transport: UrlTransport, url: URL): TransportChoice => ({
  definition: transport,
  name: transport.name as TransportName,
  open: (context) => transport.open(url, context)
})

/**
 * The transport a connector tries first: its URL scheme's, or that one's fallback when the
 * fallback is what connected last time (a reconnect skips the failing probe).
 */
export const transportFor = (connector: McpSpeakingConnector, remembered: string | undefined): TransportChoice => {
  if (connector.kind === "stdio") return { definition: stdio, name: stdio.name, open: (context) => stdio.open(connector, context) }
  const url = connector.url!
  const transport = byScheme.get(url.protocol)
  // Decoding accepts only registered schemes (config/transportSchemes.ts).
  if (transport === undefined) throw new Error(`no transport for ${url.protocol}`)
  const fallback = transport.fallback?.to
  return boundToUrl(fallback !== undefined && fallback === remembered ? byName.get(fallback)! : transport, url)
}

/** The transport to try once after `choice` failed with an error its fallback recognises. */
export const fallbackFor = (choice: TransportChoice, connector: McpSpeakingConnector): TransportChoice | undefined => {
  const fallback = choice.definition.fallback?.to
  if (fallback === undefined || connector.kind === "stdio") return undefined
  return boundToUrl(byName.get(fallback)!, connector.url!)
}
