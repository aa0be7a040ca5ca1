/**
 * A connected upstream as request routing uses it: the connector's own connection, or a caller's
 * own session (`callerSessions.ts`) that looks the same to the router and the relay.
 * @module
 */
import type { Client, ProtocolEra } from "@modelcontextprotocol/client"
import * as Duration from "effect/Duration"
import type { SentCredentials } from "../auth/scrubSecrets.js"
import type { McpSpeakingConnector } from "../config/model.js"
import type { CallRegistry } from "./callChannel.js"
import type { UpstreamRoute } from "./upstreamRoute.js"

/** A connected upstream, as request routing uses it. */
export interface LiveUpstream {
  readonly connector: McpSpeakingConnector
  readonly client: Client
  readonly era: ProtocolEra | undefined
  /** Ask the connector to verify its connection now (a call failed at the transport level). */
  readonly suspect: () => void
  /** The calls in flight, for routing what the upstream sends outside a response. */
  readonly calls: CallRegistry
  /** Streamable HTTP: sends a call without the SDK client (see `upstreamCall.ts`). */
  readonly direct: UpstreamRoute | undefined
  /** The connector's per-call timeout, in milliseconds and as error messages say it. */
  readonly timeout: ConnectorTimeout
  /** The credential's recent values, scrubbed from the upstream's JSON-RPC errors. */
  readonly sentCredentials: SentCredentials | undefined
}

export interface ConnectorTimeout {
  readonly ms: number
  readonly text: string
}

/** Worked out once per connection, so the relay does no duration arithmetic per call. */
export const connectorTimeout = (connector: McpSpeakingConnector): ConnectorTimeout => ({
  ms: Duration.toMillis(connector.timeout),
  text: Duration.format(connector.timeout)
})
