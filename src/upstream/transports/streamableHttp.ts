/**
 * Streamable HTTP, the MCP transport for `http:`/`https:` URLs. The only one the relay can send
 * calls over without the SDK client, so it hands back the route for that. A server that answers
 * its first POST with 400, 404 or 405 speaks the legacy HTTP+SSE transport (`sse.ts`) instead.
 * @module
 */
import { SdkHttpError, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { SentCredentials } from "../../auth/scrubSecrets.js"
import { authorizedExchange, authorizedFetch } from "../authorizedFetch.js"
import { readListenInEitherFraming } from "../listenFraming.js"
import type { UrlTransport } from "./transport.js"

/** Whether a failed streamable-HTTP connect means "this server speaks the legacy SSE transport". */
const suggestsLegacySse = (error: unknown) =>
  error instanceof SdkHttpError && [400, 404, 405].includes(error.status)

export const streamableHttp = {
  name: "streamable-http",
  schemes: ["http:", "https:"],
  fallback: { to: "sse", when: (error) => suggestsLegacySse(error.original) },
  open: (url, { credential, runtime }) => {
    const sentCredentials = credential === undefined ? undefined : new SentCredentials()
    const fetch = authorizedFetch({ credential, runtime, sent: sentCredentials })
    const exchange = authorizedExchange({ credential, runtime, sent: sentCredentials })
    const transport = new StreamableHTTPClientTransport(url, {
      // Some servers frame a listen stream as JSON messages, which the SDK cannot read.
      fetch: readListenInEitherFraming(fetch),
      reconnectionOptions: { maxRetries: 2, initialReconnectionDelay: 1000, maxReconnectionDelay: 30_000, reconnectionDelayGrowFactor: 1.5 }
    })
    return { transport, sentCredentials, route: { url, exchange, transport } }
  }
} as const satisfies UrlTransport
