/**
 * What a transport to MCP upstreams is: how `connection.ts` opens one and what it gets back. Each
 * transport is one file beside this one, listed in `registry.ts`.
 * @module
 */
import type { StreamableHTTPClientTransport, Transport } from "@modelcontextprotocol/client"
import type * as Runtime from "effect/Runtime"
import type { Credential } from "../../plugin/AuthPlugin.js"
import type { SentCredentials } from "../../auth/scrubSecrets.js"
import type { McpUrlScheme } from "../../config/transportSchemes.js"
import type { UpstreamError } from "../../catalog/UpstreamError.js"
import type { ExchangeLike } from "../authorizedFetch.js"

/** What opening a transport may use. */
export interface TransportContext {
  readonly credential: Credential | undefined
  readonly runtime: Runtime.Runtime<never>
  /** One line the upstream process wrote to stderr, already scrubbed (stdio). */
  readonly onStderr: (line: string) => void
}

/** An SDK transport, not yet started, and what the connection needs to know about it. */
export interface OpenedTransport {
  readonly transport: Transport
  /** The last lines of the process's stderr, added to connect errors; none without a process. */
  readonly stderrTail?: () => string
  /** Why the connection ended, for its `closed` error; "connection closed" unless given. */
  readonly closedMessage?: () => string
  /** The credential's values sent, to scrub from the upstream's errors; none without a credential. */
  readonly sentCredentials?: SentCredentials | undefined
  /** Streamable HTTP only: what the relay needs to send a call without the SDK client (`UpstreamRoute`). */
  readonly route?: { readonly url: URL; readonly exchange: ExchangeLike; readonly transport: StreamableHTTPClientTransport }
}

/** A failed connect, with the error the SDK threw, for a transport's fallback to recognise. */
export type AttemptError = UpstreamError & { readonly original?: unknown }

export interface TransportDefinition<Target> {
  /** Shown as the connector's `transport` and remembered across reconnects. */
  readonly name: string
  /** The URL schemes that select this transport; none for one reached otherwise (stdio, a fallback). */
  readonly schemes: ReadonlyArray<McpUrlScheme>
  /** The transport tried once when this one fails to connect in a way `when` recognises. */
  readonly fallback?: { readonly to: string; readonly when: (error: AttemptError) => boolean }
  /** How long the SDK waits for `server/discover` before taking the upstream as 2025-era. */
  readonly probeTimeoutMs?: (connectorTimeoutMs: number) => number
  /** Builds the transport; `connection.ts` starts it (through the SDK client) and closes it. */
  readonly open: (target: Target, context: TransportContext) => OpenedTransport
}

/** A transport an `mcp({ url })` connector reaches by its URL. */
export type UrlTransport = TransportDefinition<URL>
