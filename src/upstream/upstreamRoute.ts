/**
 * What a connector's connection offers the relay (`relay/upstreamCall.ts`) for sending a call
 * itself instead of through the SDK client, and which of the upstream's requests are relayed to
 * the caller. Defined here, beside the connection that offers it, so the connection does not
 * depend on the relay that uses it.
 * @module
 */
import type { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import type { ExchangeLike } from "./authorizedFetch.js"

/** What a connector's connection offers for sending a call directly. */
export interface UpstreamRoute {
  /** Cleared when the endpoint redirects calls (the relay's `RedirectedCall`). */
  usable: boolean
  readonly url: URL
  /** The connector's credential and keep-alive pool, without web objects. */
  readonly exchange: ExchangeLike
  readonly client: Client
  readonly transport: StreamableHTTPClientTransport
  readonly clientInfo: { readonly name: string; readonly version: string }
  readonly clientCapabilities: Record<string, unknown>
}

/** The upstream's requests the gateway relays to the caller (the SDK client's handlers in `connection.ts`). */
export const RELAYED_METHODS = ["sampling/createMessage", "elicitation/create", "roots/list"] as const
