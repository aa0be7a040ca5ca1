/**
 * The conformance fixture (see fixtureServer.ts) as most servers in the wild are written: the
 * v1 SDK (`@modelcontextprotocol/sdk`), 2025-era only, an Express app from
 * `createMcpExpressApp` (Host-header checks on localhost), one stateful
 * `StreamableHTTPServerTransport` per `Mcp-Session-Id` with an in-memory event store so SSE
 * streams resume. Sampling, elicitation and roots are real server→client requests sent while
 * a call is running; the multi-round tools of 2026-07-28 (`test_input_required_result_*`) ask
 * the same way, so the gateway is what turns them into input-required rounds for 2026 callers.
 *
 * Run: `node --import tsx test/conformance/fixtureServerV1.ts <port>`; prints its URL.
 */
import { randomUUID } from "node:crypto"
import type { AddressInfo } from "node:net"
import { InMemoryEventStore } from "@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js"
import { completable } from "@modelcontextprotocol/sdk/server/completable.js"
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js"
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js"
import {
  type CallToolResult,
  CreateMessageResultSchema,
  ElicitResultSchema,
  isInitializeRequest,
  ListRootsResultSchema,
  ListToolsRequestSchema,
  type ServerNotification,
  type ServerRequest,
  SubscribeRequestSchema,
  type Tool,
  UnsubscribeRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import * as z from "zod"
import { JSON_SCHEMA_2020_12, PNG, WAV } from "./fixtureData.js"

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] })

// Sent on the call's own stream (related to the request), as the v1 SDK does for `extra.sendRequest`.
const elicit = (extra: Extra, message: string, properties: Record<string, unknown>, required: Array<string> = Object.keys(properties)) =>
  extra.sendRequest(
    { method: "elicitation/create", params: { message, requestedSchema: { type: "object", properties, required } as never } },
    ElicitResultSchema
  )
const sample = (extra: Extra, prompt: string, maxTokens: number) =>
  extra.sendRequest(
    { method: "sampling/createMessage", params: { messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens } },
    CreateMessageResultSchema
  )
const listRoots = (extra: Extra) => extra.sendRequest({ method: "roots/list" }, ListRootsResultSchema)
const sampledText = (result: { content: unknown }) => {
  const content = (Array.isArray(result.content) ? result.content[0] : result.content) as { type?: string; text?: string } | undefined
  return content?.type === "text" ? content.text : undefined
}

const subscribed = new Set<McpServer>()
setInterval(() => {
  for (const server of subscribed) {
    server.server.sendResourceUpdated({ uri: "test://watched-resource" }).catch(() => subscribed.delete(server))
  }
}, 3000).unref()

export const buildFixtureV1 = (): McpServer => {
  const server = new McpServer({ name: "mcp-conformance-test-server-v1", version: "1.0.0" }, {
    capabilities: {
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      prompts: { listChanged: true },
      logging: {},
      completions: {}
    }
  })

  server.registerTool("test_simple_text", { description: "Tests simple text content response" }, async () =>
    text("This is a simple text response for testing."))
  server.registerTool("test_image_content", { description: "Tests image content response" }, async () => ({
    content: [{ type: "image", data: PNG, mimeType: "image/png" }]
  }))
  server.registerTool("test_audio_content", { description: "Tests audio content response" }, async () => ({
    content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }]
  }))
  server.registerTool("test_embedded_resource", { description: "Tests embedded resource content response" }, async () => ({
    content: [{
      type: "resource",
      resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." }
    }]
  }))
  server.registerTool("test_multiple_content_types", { description: "Tests text, image and resource content together" }, async () => ({
    content: [
      { type: "text", text: "Multiple content types test:" },
      { type: "image", data: PNG, mimeType: "image/png" },
      {
        type: "resource",
        resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: JSON.stringify({ test: "data", value: 123 }) }
      }
    ]
  }))
  server.registerTool("test_tool_with_logging", { description: "Tests tool that emits log messages during execution" }, async (extra) => {
    for (const [i, data] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
      if (i > 0) await sleep(50)
      await extra.sendNotification({ method: "notifications/message", params: { level: "info", data } })
    }
    return text("Tool with logging executed successfully")
  })
  server.registerTool("test_tool_with_progress", { description: "Tests tool that reports progress notifications" }, async (extra) => {
    const progressToken = extra._meta?.progressToken ?? 0
    for (const progress of [0, 50, 100]) {
      if (progress > 0) await sleep(50)
      await extra.sendNotification({
        method: "notifications/progress",
        params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` }
      })
    }
    return text(String(progressToken))
  })
  server.registerTool("test_error_handling", { description: "Tests error response handling" }, async () => {
    throw new Error("This tool intentionally returns an error for testing")
  })
  server.registerTool("test_reconnection", { description: "Closes the SSE stream mid-call (SEP-1699)" }, async (extra) => {
    extra.closeSSEStream?.()
    await sleep(100)
    return text("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.")
  })
  server.registerTool("test_sampling", {
    description: "Tests server-initiated sampling (LLM completion request)",
    inputSchema: { prompt: z.string().describe("The prompt to send to the LLM") }
  }, async ({ prompt }, extra) => {
    const answer = await sample(extra, prompt, 100)
    return text(`LLM response: ${sampledText(answer) ?? "No response"}`)
  })
  server.registerTool("test_elicitation", {
    description: "Tests server-initiated elicitation (user input request)",
    inputSchema: { message: z.string().describe("The message to show the user") }
  }, async ({ message }, extra) => {
    const answer = await elicit(extra, message, {
      username: { type: "string", description: "User's response" },
      email: { type: "string", description: "User's email address" }
    })
    return text(`User response: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`)
  })
  server.registerTool("test_elicitation_sep1034_defaults", { description: "Elicitation with defaults (SEP-1034)" }, async (extra) => {
    const answer = await elicit(extra, "Please review and update the form fields with defaults", {
      name: { type: "string", description: "User name", default: "John Doe" },
      age: { type: "integer", description: "User age", default: 30 },
      score: { type: "number", description: "User score", default: 95.5 },
      status: { type: "string", description: "User status", enum: ["active", "inactive", "pending"], default: "active" },
      verified: { type: "boolean", description: "Verification status", default: true }
    }, [])
    return text(`Elicitation completed: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`)
  })
  server.registerTool("test_elicitation_sep1330_enums", { description: "Elicitation with enum variants (SEP-1330)" }, async (extra) => {
    const answer = await elicit(extra, "Please select options from the enum fields", {
      untitledSingle: { type: "string", description: "Untitled single-select", enum: ["option1", "option2", "option3"] },
      titledSingle: {
        type: "string",
        description: "Titled single-select",
        oneOf: [{ const: "value1", title: "First Option" }, { const: "value2", title: "Second Option" }, { const: "value3", title: "Third Option" }]
      },
      legacyEnum: {
        type: "string",
        description: "Legacy titled enum",
        enum: ["opt1", "opt2", "opt3"],
        enumNames: ["Option One", "Option Two", "Option Three"]
      },
      untitledMulti: { type: "array", description: "Untitled multi-select", items: { type: "string", enum: ["option1", "option2", "option3"] } },
      titledMulti: {
        type: "array",
        description: "Titled multi-select",
        items: {
          anyOf: [{ const: "value1", title: "First Choice" }, { const: "value2", title: "Second Choice" }, { const: "value3", title: "Third Choice" }]
        }
      }
    }, [])
    return text(`Elicitation completed: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`)
  })
  // Its inputSchema is replaced with the raw JSON Schema in tools/list below: the v1 SDK
  // only derives input schemas from zod, which cannot express `$anchor` or `if`/`then`.
  server.registerTool("json_schema_2020_12_tool", {
    description: "Tool with JSON Schema 2020-12 features",
    inputSchema: z.object({}).passthrough()
  }, async () => text("ok"))

  // The multi-round tools of 2026-07-28, asked the 2025 way (real requests during the call).
  server.registerTool("test_input_required_result_elicitation", { description: "input_required: elicitation" }, async (extra) => {
    const answer = await elicit(extra, "What is your name?", { name: { type: "string" } })
    return text(`Hello, ${String((answer.content as { name?: unknown } | undefined)?.name)}!`)
  })
  server.registerTool("test_input_required_result_sampling", { description: "input_required: sampling" }, async (extra) => {
    const answer = await sample(extra, "What is the capital of France?", 100)
    return text(`Sampling said: ${sampledText(answer) ?? "?"}`)
  })
  server.registerTool("test_input_required_result_list_roots", { description: "input_required: roots" }, async (extra) => {
    const { roots } = await listRoots(extra)
    return text(`Roots: ${roots.map((r) => r.uri).join(", ")}`)
  })
  server.registerTool("test_input_required_result_request_state", { description: "input_required: requestState" }, async (extra) => {
    await elicit(extra, "Please confirm", { ok: { type: "boolean" } })
    return text("state-ok: confirmed")
  })
  server.registerTool("test_input_required_result_multiple_inputs", { description: "input_required: several kinds" }, async (extra) => {
    await Promise.all([
      elicit(extra, "What is your name?", { name: { type: "string" } }),
      sample(extra, "Generate a greeting", 50),
      listRoots(extra)
    ])
    return text("All inputs received")
  })
  server.registerTool("test_input_required_result_multi_round", { description: "input_required: two rounds" }, async (extra) => {
    await elicit(extra, "Step 1: What is your name?", { name: { type: "string" } })
    await elicit(extra, "Step 2: What is your favorite color?", { color: { type: "string" } })
    return text("Multi-round complete")
  })
  server.registerTool("test_input_required_result_tampered_state", { description: "input_required: signed state" }, async (extra) => {
    await elicit(extra, "Please confirm", { ok: { type: "boolean" } })
    return text("state verified")
  })

  // Resources.
  server.registerResource("static-text", "test://static-text", {
    title: "Static Text Resource",
    description: "A static text resource for testing",
    mimeType: "text/plain"
  }, async () => ({ contents: [{ uri: "test://static-text", mimeType: "text/plain", text: "This is the content of the static text resource." }] }))
  server.registerResource("static-binary", "test://static-binary", {
    title: "Static Binary Resource",
    description: "A static binary resource (image) for testing",
    mimeType: "image/png"
  }, async () => ({ contents: [{ uri: "test://static-binary", mimeType: "image/png", blob: PNG }] }))
  server.registerResource("watched", "test://watched-resource", {
    title: "Watched Resource",
    description: "A resource that can be subscribed to",
    mimeType: "text/plain"
  }, async () => ({ contents: [{ uri: "test://watched-resource", mimeType: "text/plain", text: "Watched resource content" }] }))
  server.registerResource(
    "template",
    new ResourceTemplate("test://template/{id}/data", {
      list: undefined,
      complete: { id: (value) => ["1", "2", "3", "123"].filter((v) => v.startsWith(value)) }
    }),
    { title: "Resource Template", description: "A resource template with parameter substitution", mimeType: "application/json" },
    async (uri, { id }) => ({
      contents: [{
        uri: uri.href,
        mimeType: "application/json",
        text: JSON.stringify({ id: String(id), templateTest: true, data: `Data for ID: ${String(id)}` })
      }]
    })
  )
  server.server.setRequestHandler(SubscribeRequestSchema, async () => {
    subscribed.add(server)
    return {}
  })
  server.server.setRequestHandler(UnsubscribeRequestSchema, async () => {
    subscribed.delete(server)
    return {}
  })

  // Prompts.
  server.registerPrompt("test_simple_prompt", { description: "A simple prompt without arguments" }, () => ({
    messages: [{ role: "user", content: { type: "text", text: "This is a simple prompt for testing." } }]
  }))
  server.registerPrompt("test_prompt_with_arguments", {
    description: "A prompt with required arguments",
    argsSchema: {
      arg1: completable(z.string().describe("First test argument"), (value) => ["paris", "park", "party"].filter((v) => v.startsWith(value))),
      arg2: z.string().describe("Second test argument")
    }
  }, ({ arg1, arg2 }) => ({
    messages: [{ role: "user", content: { type: "text", text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }]
  }))
  server.registerPrompt("test_prompt_with_embedded_resource", {
    description: "A prompt that includes an embedded resource",
    argsSchema: { resourceUri: z.string().describe("URI of the resource to embed") }
  }, ({ resourceUri }) => ({
    messages: [
      { role: "user", content: { type: "resource", resource: { uri: resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } } },
      { role: "user", content: { type: "text", text: "Please process the embedded resource above." } }
    ]
  }))
  server.registerPrompt("test_prompt_with_image", { description: "A prompt that includes image content" }, () => ({
    messages: [
      { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
      { role: "user", content: { type: "text", text: "Please analyze the image above." } }
    ]
  }))
  // Without argsSchema the v1 SDK calls back with `extra` alone; its typings assume arguments.
  const promptAskingForContext = async (extra: Extra) => {
    const answer = await elicit(extra, "What context should the prompt use?", { context: { type: "string" } })
    const context = (answer.content as { context?: unknown } | undefined)?.context
    return { messages: [{ role: "user" as const, content: { type: "text" as const, text: `Context: ${String(context)}` } }] }
  }
  server.registerPrompt("test_input_required_result_prompt", { description: "A prompt that asks for context first" }, promptAskingForContext as never)

  // McpServer's own tools/list, with json_schema_2020_12_tool's schema as written above.
  const handlers = (server.server as unknown as { _requestHandlers: Map<string, (request: unknown, extra: unknown) => Promise<{ tools: Array<Tool> }>> })
    ._requestHandlers
  const listTools = handlers.get("tools/list")
  if (listTools === undefined) throw new Error("McpServer registered no tools/list handler")
  server.server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
    const listed = await listTools(request, extra)
    return {
      ...listed,
      tools: listed.tools.map((tool) => tool.name === "json_schema_2020_12_tool" ? { ...tool, inputSchema: JSON_SCHEMA_2020_12 as Tool["inputSchema"] } : tool)
    }
  })
  return server
}

export interface ServedFixtureV1 {
  readonly url: string
  readonly close: () => Promise<void>
}

/** Serves one McpServer per session, the way the v1 SDK's examples do. */
export const serveFixtureV1 = async (port = 0): Promise<ServedFixtureV1> => {
  const transports = new Map<string, StreamableHTTPServerTransport>()
  const app = createMcpExpressApp({ host: "127.0.0.1" })
  const sessionNotFound = { jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }

  app.post("/mcp", async (req, res) => {
    const id = req.headers["mcp-session-id"]
    if (typeof id === "string") {
      const transport = transports.get(id)
      if (transport === undefined) return void res.status(404).json(sessionNotFound)
      return transport.handleRequest(req, res, req.body)
    }
    if (!isInitializeRequest(req.body)) {
      return void res.status(400).json({ jsonrpc: "2.0", error: { code: -32000, message: "Bad Request: no session ID" }, id: null })
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new InMemoryEventStore(),
      retryInterval: 100,
      onsessioninitialized: (sid) => void transports.set(sid, transport)
    })
    transport.onclose = () => {
      if (transport.sessionId !== undefined) transports.delete(transport.sessionId)
    }
    await buildFixtureV1().connect(transport)
    return transport.handleRequest(req, res, req.body)
  })
  // GET (the standalone stream, or a resumption with Last-Event-ID) and DELETE.
  const inSession = async (req: Parameters<Parameters<typeof app.get>[1]>[0], res: Parameters<Parameters<typeof app.get>[1]>[1]) => {
    const id = req.headers["mcp-session-id"]
    const transport = typeof id === "string" ? transports.get(id) : undefined
    if (transport === undefined) return void res.status(typeof id === "string" ? 404 : 400).json(sessionNotFound)
    return transport.handleRequest(req, res)
  }
  app.get("/mcp", inSession)
  app.delete("/mcp", inSession)

  const listener = await new Promise<ReturnType<typeof app.listen>>((resolve, reject) => {
    const server = app.listen(port, "127.0.0.1", (error?: Error) => error ? reject(error) : resolve(server))
  })
  return {
    url: `http://localhost:${(listener.address() as AddressInfo).port}/mcp`,
    close: async () => {
      for (const transport of transports.values()) await transport.close().catch(() => {})
      listener.closeAllConnections()
      await new Promise<void>((resolve) => listener.close(() => resolve()))
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const served = await serveFixtureV1(Number(process.argv[2] ?? 0))
  process.stdout.write(`${served.url}\n`)
}
