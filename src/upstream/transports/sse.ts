/**
 * The legacy HTTP+SSE transport (2024-11-05): reached as the fallback of streamable HTTP for a
 * server that refuses its POST, and remembered for the connector's reconnects. It falls back the
 * other way (a server that moved on to streamable HTTP), except on a credential problem.
 * @module
 */
import { SSEClientTransport } from "@modelcontextprotocol/client"
import { SentCredentials } from "../../auth/scrubSecrets.js"
import { authorizedFetch } from "../authorizedFetch.js"
import type { UrlTransport } from "./transport.js"

export const sse = {
  name: "sse",
  // Shares http:/https: with streamable HTTP, so no URL selects it by scheme.
  schemes: [],
  fallback: { to: "streamable-http", when: (error) => error.kind !== "auth" },
  open: (url, { credential, runtime }) => {
    const sentCredentials = credential === undefined ? undefined : new SentCredentials()
    const fetch = authorizedFetch({ credential, runtime, sent: sentCredentials })
    return { transport: new SSEClientTransport(url, { fetch }), sentCredentials }
  }
} as const satisfies UrlTransport
