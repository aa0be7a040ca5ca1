/**
 * Starting Aperture in-process and connecting real MCP clients (both SDK lines) to it.
 */
import { randomUUID } from "node:crypto"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Aperture, type RunningGateway } from "../../src/Aperture.js"
import type { UserConfig } from "../../src/config/dsl.js"
import { redis, stdio } from "../../src/config/dsl.js"
import { inject } from "vitest"
import { everythingEntry } from "./processes.js"

/**
 * In the `cluster` test project (vitest.config.ts) a gateway without a `cluster` of its own runs
 * as a one-replica cluster on the project's Redis (each under its own key prefix), so the same
 * tests check the Redis implementations of the shared state too.
 */
const clusterMode = (config: UserConfig): Partial<UserConfig> =>
  process.env["APERTURE_TEST_PROJECT"] !== "cluster" || config.cluster !== undefined ? {} : {
    cluster: redis({ url: inject("clusterRedisUrl"), keyPrefix: `test-${randomUUID()}:` }),
    secretKey: config.secretKey ?? "the test project's cluster secret key, 32+ characters"
  }

export const startGateway = (config: UserConfig): Promise<RunningGateway> =>
  Aperture.start({ ...config, ...clusterMode(config), server: { ...config.server, port: 0 } })

/** The official everything server as a stdio connector. */
export const everythingStdio = (extra: Partial<Parameters<typeof stdio>[0]> = {}) =>
  stdio({ command: process.execPath, args: [everythingEntry, "stdio"], ...extra })

/** A v2 SDK client negotiating automatically (2026-07-28 against Aperture). */
export const connectV2 = async (url: string, headers?: Record<string, string>) => {
  const client = new Client({ name: "test-v2", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), headers === undefined ? undefined : { requestInit: { headers } }))
  return client
}

/** A v1 SDK client (2025-11-25, sessionful). */
export const connectV1 = async (url: string, options: { readonly onToolsChanged?: () => void } = {}) => {
  const client = new V1Client({ name: "test-v1", version: "1.0.0" })
  const transport = new V1Transport(new URL(url))
  await client.connect(transport)
  if (options.onToolsChanged) {
    const { ToolListChangedNotificationSchema } = await import("@modelcontextprotocol/sdk/types.js")
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => options.onToolsChanged?.())
  }
  return { client, transport }
}

/** The headers of a raw 2025-11-25 streamable HTTP client. */
export const SESSION_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25"
} as const

/** A raw 2025-11-25 `initialize` POST (its body unread), with `headers` beside the session ones (a caller's key, say). */
export const rawInitialize = (url: string, options: { readonly headers?: Record<string, string>; readonly clientName?: string } = {}) =>
  fetch(url, {
    method: "POST",
    headers: { ...SESSION_HEADERS, ...options.headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: options.clientName ?? "raw", version: "1" } }
    })
  })

/** Opens a 2025-era session by hand (initialize, then initialized); returns the headers to use it. */
export const openRawSession = async (url: string, clientName: string): Promise<Record<string, string>> => {
  const response = await rawInitialize(url, { clientName })
  await response.text()
  const id = response.headers.get("mcp-session-id")
  if (id === null) throw new Error(`initialize answered ${response.status} without a session id`)
  const session = { ...SESSION_HEADERS, "mcp-session-id": id }
  const initialized = await fetch(url, { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })
  await initialized.text()
  return session
}

/** Polls until `check` returns a value (not undefined/false), or fails after `timeoutMs`. */
export const eventually = async <A>(check: () => Promise<A | undefined | false> | A | undefined | false, timeoutMs = 20_000, what = "condition"): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      last = error
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`)
}

/** Waits until `/healthz` counts `count` connectors ready. */
export const untilReady = (gateway: RunningGateway, count: number, timeoutMs = 30_000) =>
  eventually(async () => {
    const health = (await (await fetch(`${gateway.origin}/healthz`)).json()) as { connectors: Record<string, number> }
    return health.connectors["ready"] === count
  }, timeoutMs, `${count} connectors ready`)

/** `GET /api/connectors` of a gateway. */
export const connectorsOf = async (gateway: RunningGateway) => {
  const response = await fetch(`${gateway.origin}/api/connectors`)
  return (await response.json()) as {
    connectors: Array<{ id: string; status: string; error?: string; tools: Array<string>; warnings?: Array<string> }>
  }
}

export const statusOf = async (gateway: RunningGateway, id: string) =>
  (await connectorsOf(gateway)).connectors.find((c) => c.id === id)?.status

/** The error a promise rejects with (a JSON-RPC error from an SDK client, say); fails if it resolves. */
export const errorOf = async (promise: Promise<unknown>) => {
  try {
    await promise
  } catch (error) {
    return error as { code?: number; message: string }
  }
  throw new Error("expected an error")
}
