/**
 * Callers for the upstream interop files: the gateway's identity (two API-key users, alice and
 * bob, and loopback for `connectV1`/`connectV2`), and both SDK clients with what a real client
 * answers to an upstream's questions (sampling, elicitation, roots) and collects (log messages).
 */
import { Client, LOG_LEVEL_META_KEY, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  type CallToolResult,
  type LoggingLevel
} from "@modelcontextprotocol/sdk/types.js"
import { apiKeys, grant, loopback } from "../../src/index.js"

export const KEYS = { alice: `alice-${crypto.randomUUID()}`, bob: `bob-${crypto.randomUUID()}` } as const
export type User = keyof typeof KEYS

/** alice and bob by API key, anyone else on loopback as `local`; everyone may use everything. */
export const callersConfig = {
  identity: [apiKeys({ keys: { [KEYS.alice]: { login: "alice" }, [KEYS.bob]: { login: "bob" } } }), loopback({ login: "local" })],
  grants: [grant({ src: ["alice", "bob", "local"], connectors: ["**"] })]
}

export type Era = "v1" | "v2"
export const ERAS: ReadonlyArray<Era> = ["v1", "v2"]

export interface Answers {
  /** What the caller's model answers a sampling request with. */
  readonly sampling?: string
  /** The name the caller's user gives an elicitation form. */
  readonly elicitation?: string
  /** The caller's roots (a mutable list: change it, then `rootsChanged`). */
  readonly roots?: Array<{ uri: string; name?: string }>
}

export interface Caller {
  readonly era: Era
  /** The SDK client itself, for the calls both clients spell alike. */
  readonly client: Pick<V1Client, "listTools" | "listResources" | "listResourceTemplates" | "readResource" | "listPrompts" | "getPrompt" | "complete">
  /** `logging/setLevel` on a 2025 session; on 2026-07-28 the level rides on each request's `_meta`. */
  readonly setLogLevel: (level: LoggingLevel) => Promise<void>
  readonly call: (
    name: string,
    args?: Record<string, unknown>,
    options?: { readonly onprogress?: (p: { progress: number }) => void; readonly signal?: AbortSignal }
  ) => Promise<CallToolResult>
  /** Log messages (`notifications/message` params) received, in order. */
  readonly logs: Array<{ level: string; data: unknown }>
  readonly asked: { sampling: number; elicitation: number; roots: number }
  /** Tells the gateway the roots changed (2025 era; a 2026-07-28 upstream asks for them every time). */
  readonly rootsChanged: () => Promise<void>
  readonly close: () => Promise<void>
}

/** Runs `body` with the caller `opening` connects, and closes that caller however `body` ends. */
export const withCaller = async <A>(opening: Promise<Caller>, body: (caller: Caller) => Promise<A>): Promise<A> => {
  const caller = await opening
  try {
    return await body(caller)
  } finally {
    await caller.close()
  }
}

/** A caller on either era, identified as `user` (alice, bob) by API key. */
export const connectAs = async (era: Era, url: string, user: User, answers: Answers = {}): Promise<Caller> => {
  const headers = { authorization: `Bearer ${KEYS[user]}` }
  const logs: Caller["logs"] = []
  const asked = { sampling: 0, elicitation: 0, roots: 0 }
  const sampled = () => {
    asked.sampling++
    return { role: "assistant" as const, content: { type: "text" as const, text: answers.sampling ?? "" }, model: "test-model" }
  }
  const elicited = () => {
    asked.elicitation++
    return { action: "accept" as const, content: { name: answers.elicitation ?? "" } }
  }
  const rooted = () => {
    asked.roots++
    return { roots: [...(answers.roots ?? [])] }
  }
  const capabilities = {
    ...(answers.sampling !== undefined && { sampling: {} }),
    ...(answers.elicitation !== undefined && { elicitation: { form: {} } }),
    ...(answers.roots !== undefined && { roots: { listChanged: true } })
  }
  if (era === "v1") {
    const client = new V1Client({ name: `interop-${user}`, version: "1" }, { capabilities })
    if (answers.sampling !== undefined) client.setRequestHandler(CreateMessageRequestSchema, async () => sampled())
    if (answers.elicitation !== undefined) client.setRequestHandler(ElicitRequestSchema, async () => elicited())
    if (answers.roots !== undefined) client.setRequestHandler(ListRootsRequestSchema, async () => rooted())
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push({ level: n.params.level, data: n.params.data }))
    await client.connect(new V1Transport(new URL(url), { requestInit: { headers } }))
    return {
      era,
      client,
      setLogLevel: async (level) => void (await client.setLoggingLevel(level)),
      call: (name, args = {}, options = {}) =>
        client.callTool({ name, arguments: args }, undefined, {
          ...(options.onprogress && { onprogress: options.onprogress }),
          ...(options.signal && { signal: options.signal }),
          timeout: 30_000
        }) as Promise<CallToolResult>,
      logs,
      asked,
      rootsChanged: () => client.sendRootsListChanged(),
      close: () => client.close()
    }
  }
  const client = new Client({ name: `interop-${user}`, version: "1" }, { versionNegotiation: { mode: "auto" }, capabilities })
  if (answers.sampling !== undefined) client.setRequestHandler("sampling/createMessage", async () => sampled())
  if (answers.elicitation !== undefined) client.setRequestHandler("elicitation/create", async () => elicited())
  if (answers.roots !== undefined) client.setRequestHandler("roots/list", async () => rooted())
  client.setNotificationHandler("notifications/message", (n) => void logs.push({ level: n.params.level, data: n.params.data }))
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
  let logLevel: LoggingLevel | undefined
  return {
    era,
    client: client as unknown as Caller["client"],
    setLogLevel: async (level) => void (logLevel = level),
    call: (name, args = {}, options = {}) =>
      client.callTool({ name, arguments: args, ...(logLevel !== undefined && { _meta: { [LOG_LEVEL_META_KEY]: logLevel } }) }, {
        ...(options.onprogress && { onprogress: options.onprogress }),
        ...(options.signal && { signal: options.signal }),
        timeout: 30_000
      }) as Promise<CallToolResult>,
    logs,
    asked,
    rootsChanged: async () => {},
    close: () => client.close()
  }
}

/** The text of a tool result's content blocks, joined. */
export const textOf = (result: { content?: unknown }) =>
  ((result.content ?? []) as Array<{ type: string; text?: string }>).map((c) => c.text ?? JSON.stringify(c)).join("\n")
