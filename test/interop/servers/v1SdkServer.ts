/**
 * An MCP server on the v1 TypeScript SDK (`@modelcontextprotocol/sdk`, what most of the ecosystem
 * runs), over streamable HTTP, sessionful (`Mcp-Session-Id`) or stateless (`sessionIdGenerator:
 * undefined`, a new server per request). Its tools, resource, template, prompt and completions
 * have the same names and behaviour as `fastmcp_server.py`, so one feature suite runs on both.
 */
import { randomUUID } from "node:crypto"
import { completable } from "@modelcontextprotocol/sdk/server/completable.js"
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"
import type { LoggingLevel } from "@modelcontextprotocol/sdk/types.js"
import * as z from "zod"
import { serveFetch } from "../../fixtures/nodeAdapter.js"

export interface V1SdkServer {
  readonly url: string
  /** Counts of the `slow` tool. */
  readonly slow: { started: number; completed: number; cancelled: number }
  /** Sessions the server holds now (always 0 when stateless). */
  readonly sessions: () => number
  /** Session ids the server saw closed by a DELETE. */
  readonly deleted: ReadonlyArray<string>
  /** Every Authorization value the server was sent. */
  readonly authorizations: ReadonlyArray<string>
  readonly close: () => Promise<void>
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener("abort", () => {
      clearTimeout(timer)
      reject(new Error("cancelled"))
    }, { once: true })
  })

export const startV1SdkServer = async (options: { readonly stateless: boolean }): Promise<V1SdkServer> => {
  const slow = { started: 0, completed: 0, cancelled: 0 }
  const deleted: Array<string> = []
  const authorizations: Array<string> = []
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>()

  const build = () => {
    const server = new McpServer(
      { name: "v1-sdk-interop", version: "1.0.0" },
      { capabilities: { logging: {}, completions: {} } }
    )
    const inner = server.server
    // One McpServer per session (or per request when stateless): what a session was told to keep.
    let remembered: string | undefined

    server.registerTool("add", {
      description: "Adds two integers.",
      inputSchema: { a: z.number().int(), b: z.number().int() },
      outputSchema: { result: z.number().int() }
    }, async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }], structuredContent: { result: a + b } }))

    server.registerTool("weather", {
      description: "The weather in a city, as structured content.",
      inputSchema: { city: z.string() },
      outputSchema: { city: z.string(), temperature: z.number(), conditions: z.string() }
    }, async ({ city }) => {
      const weather = { city, temperature: 21.5, conditions: "sunny" }
      return { content: [{ type: "text", text: JSON.stringify(weather) }], structuredContent: weather }
    })

    server.registerTool("fail", { description: "Always fails with a tool error.", inputSchema: { message: z.string() } }, async ({ message }) => ({
      content: [{ type: "text", text: `failed as asked: ${message}` }],
      isError: true
    }))

    server.registerTool("count", { description: "Reports progress 1..steps.", inputSchema: { steps: z.number().int() } }, async ({ steps }, extra) => {
      const token = extra._meta?.progressToken
      for (let i = 1; i <= steps; i++) {
        if (token !== undefined) {
          await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: i, total: steps, message: `step ${i}` } })
        }
      }
      return { content: [{ type: "text", text: `counted ${steps}` }] }
    })

    server.registerTool("chatty", { description: "Logs at several levels during the call." }, async (extra) => {
      for (const level of ["debug", "info", "warning", "error"] as const satisfies ReadonlyArray<LoggingLevel>) {
        // On the call's own stream (related to the request), filtered by the session's level.
        if (!(inner as unknown as { isMessageIgnored: (l: LoggingLevel, s?: string) => boolean }).isMessageIgnored(level, extra.sessionId)) {
          await extra.sendNotification({ method: "notifications/message", params: { level, data: `chatty ${level}` } })
        }
      }
      return { content: [{ type: "text", text: "chatted" }] }
    })

    server.registerTool("slow", { description: "Sleeps; counted.", inputSchema: { seconds: z.number() } }, async ({ seconds }, extra) => {
      slow.started++
      try {
        await sleep(seconds * 1000, extra.signal)
      } catch {
        slow.cancelled++
        throw new Error("cancelled")
      }
      slow.completed++
      return { content: [{ type: "text", text: "slept" }] }
    })

    server.registerTool("remember", { description: "Keeps a value in this session.", inputSchema: { value: z.string() } }, async ({ value }) => {
      remembered = value
      return { content: [{ type: "text", text: "remembered" }] }
    })

    server.registerTool("recall", { description: "What this session keeps." }, async () => ({
      content: [{ type: "text", text: remembered ?? "<nothing>" }]
    }))

    server.registerTool("authorization_seen", { description: "The Authorization header of this call." }, async (extra) => ({
      content: [{ type: "text", text: extra.requestInfo?.headers["authorization"]?.toString() ?? "<none>" }]
    }))

    server.registerTool("ask_llm", { description: "Asks the client's model.", inputSchema: { prompt: z.string() } }, async ({ prompt }, extra) => {
      const reply = await inner.createMessage(
        { messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens: 50 },
        { relatedRequestId: extra.requestId }
      )
      const text = reply.content.type === "text" ? reply.content.text : JSON.stringify(reply.content)
      return { content: [{ type: "text", text: `model said: ${text}` }] }
    })

    server.registerTool("ask_user", { description: "Asks the user for a name." }, async (extra) => {
      const result = await inner.elicitInput(
        { mode: "form", message: "Who are you?", requestedSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] } },
        { relatedRequestId: extra.requestId }
      )
      const text = result.action === "accept" && result.content ? `hello ${String(result.content["name"])}` : `user chose ${result.action}`
      return { content: [{ type: "text", text }] }
    })

    server.registerTool("my_roots", { description: "The client's roots (asked on every call)." }, async (extra) => {
      const { roots } = await inner.listRoots(undefined, { relatedRequestId: extra.requestId })
      return { content: [{ type: "text", text: JSON.stringify(roots.map((r) => r.uri)) }] }
    })

    server.registerResource("readme", "fixture://readme", { mimeType: "text/plain", description: "A fixed text resource." }, async (uri) => ({
      contents: [{ uri: uri.href, mimeType: "text/plain", text: "the v1 sdk readme" }]
    }))

    server.registerResource(
      "item",
      new ResourceTemplate("fixture://items/{item_id}", {
        list: undefined,
        complete: { item_id: (value) => ["1", "12", "2"].filter((i) => i.startsWith(value)) }
      }),
      { mimeType: "application/json", description: "One item, by id." },
      async (uri, { item_id }) => ({
        contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify({ id: item_id, name: `item ${String(item_id)}` }) }]
      })
    )

    server.registerPrompt("greet", {
      description: "A greeting prompt.",
      argsSchema: {
        name: completable(z.string().describe("Who to greet"), (value) => ["alice", "albert", "bob"].filter((n) => n.startsWith(value))),
        style: z.string().optional()
      }
    }, ({ name, style }) => ({
      messages: [{ role: "user", content: { type: "text", text: `Greet ${name} in a ${style ?? "plain"} way.` } }]
    }))

    return server
  }

  const served = await serveFetch(async (request) => {
    const authorization = request.headers.get("authorization")
    if (authorization !== null && !authorizations.includes(authorization)) authorizations.push(authorization)
    if (options.stateless) {
      const server = build()
      const transport = new WebStandardStreamableHTTPServerTransport({})
      await server.connect(transport)
      return transport.handleRequest(request)
    }
    const id = request.headers.get("mcp-session-id")
    if (id !== null) {
      const transport = sessions.get(id)
      if (transport === undefined) return Response.json({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }, { status: 404 })
      return transport.handleRequest(request)
    }
    const server = build()
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => void sessions.set(sid, transport),
      onsessionclosed: (sid) => {
        deleted.push(sid)
        sessions.delete(sid)
      }
    })
    await server.connect(transport)
    return transport.handleRequest(request)
  })

  return {
    url: `http://127.0.0.1:${served.port}/mcp`,
    slow,
    sessions: () => sessions.size,
    deleted,
    authorizations,
    close: async () => {
      for (const transport of sessions.values()) await transport.close().catch(() => {})
      await served.close()
    }
  }
}
