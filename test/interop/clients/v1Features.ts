/**
 * The matrix's features as seen by a v1 TS SDK `Client`, however it reaches the gateway (its
 * own streamable HTTP transport, or stdio through mcp-remote). Each check connects the clients
 * it needs and closes them; `registerV1Features` declares one `it` per feature named.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema
} from "@modelcontextprotocol/sdk/types.js"
import { expect, it } from "vitest"
import { errorOf, eventually } from "../../helpers/gateway.js"
import type { ClientsGateway } from "./gateway.js"

export type Caller = "alice" | "bob"

/** A transport to the gateway as `caller`. */
export type TransportFor = (caller: Caller) => Transport | Promise<Transport>

export type Feature =
  | "list/call"
  | "structured content"
  | "isError vs JSON-RPC error"
  | "resources"
  | "templates"
  | "prompts"
  | "completion"
  | "progress"
  | "progress (stdio)"
  | "sampling"
  | "elicitation"
  | "roots (two callers)"
  | "logging"
  | "cancellation"

interface Context {
  readonly env: () => ClientsGateway
  readonly connect: (caller?: Caller, setup?: (client: Client) => void, capabilities?: Record<string, unknown>) => Promise<Client>
}

const textOf = (result: unknown) =>
  ((result as { content?: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? "").join(" ")

/** Runs `body` with a client, closing it whatever happens. */
const using = async <A>(client: Promise<Client>, body: (client: Client) => Promise<A>): Promise<A> => {
  const c = await client
  try {
    return await body(c)
  } finally {
    await c.close()
  }
}

/**
 * Calls `name` with a progress token and returns the progress values that reached the client, read
 * off its transport as they arrive: the v1 SDK runs a notification's handler a microtask later
 * but a response's at once, so when the last notification and the result come in one chunk (as
 * they do from mcp-remote over stdio) its `onprogress` never sees that notification. Counting at
 * the transport tests what the peer delivered, not that race in the test's own client.
 */
const progressOf = async (client: Client, name: string, args: Record<string, unknown>) => {
  const seen: Array<number> = []
  const transport = client.transport!
  const deliver = transport.onmessage
  transport.onmessage = (message, extra) => {
    if ("method" in message && message.method === "notifications/progress") seen.push(Number(message.params?.["progress"]))
    deliver?.(message, extra)
  }
  try {
    const result = await client.callTool({ name, arguments: args }, undefined, { onprogress: () => {}, resetTimeoutOnProgress: true })
    return { seen, text: textOf(result) }
  } finally {
    transport.onmessage = deliver
  }
}

const checks: Record<Feature, (ctx: Context) => Promise<void>> = {
  "list/call": (ctx) =>
    using(ctx.connect(), async (client) => {
      const names = (await client.listTools()).tools.map((t) => t.name)
      expect(names).toContain("everything_echo")
      expect(names).toContain("fx_echo")
      expect(names.filter((n) => !/^(everything|fx)_/.test(n))).toEqual([])
      expect(textOf(await client.callTool({ name: "everything_echo", arguments: { message: "hi" } }))).toBe("Echo: hi")
      expect(textOf(await client.callTool({ name: "fx_echo", arguments: { message: "hi" } }))).toBe("echo: hi")
    }),
  "structured content": (ctx) =>
    using(ctx.connect(), async (client) => {
      // The v1 client also validates structuredContent against the tool's outputSchema.
      await client.listTools()
      const result = await client.callTool({ name: "everything_get-structured-content", arguments: { location: "Chicago" } })
      expect(result.structuredContent).toMatchObject({ temperature: expect.any(Number), conditions: expect.any(String) })
      expect(result.isError).toBeFalsy()
    }),
  "isError vs JSON-RPC error": (ctx) =>
    using(ctx.connect(), async (client) => {
      const toolError = await client.callTool({ name: "everything_get-sum", arguments: { a: "not a number", b: 1 } })
      expect(toolError.isError).toBe(true)
      expect(textOf(toolError)).toMatch(/Invalid arguments/)
      const rpcError = await errorOf(client.callTool({ name: "everything_no-such-tool", arguments: {} }))
      expect(rpcError.code).toBe(-32602)
      expect(rpcError.message).toMatch(/everything_no-such-tool/)
    }),
  resources: (ctx) =>
    using(ctx.connect(), async (client) => {
      const uris = (await client.listResources()).resources.map((r) => r.uri)
      const uri = "everything-demo://resource/static/document/architecture.md"
      expect(uris).toContain(uri)
      expect(uris).toContain("fx-fixture://readme")
      const read = await client.readResource({ uri })
      expect(read.contents[0]).toMatchObject({ uri, text: expect.stringMatching(/\w/) })
    }),
  templates: (ctx) =>
    using(ctx.connect(), async (client) => {
      const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)
      expect(templates).toContain("everything-demo://resource/dynamic/text/{resourceId}")
      const read = await client.readResource({ uri: "everything-demo://resource/dynamic/text/7" })
      expect(read.contents[0]).toMatchObject({ text: expect.stringMatching(/^Resource 7:/) })
    }),
  prompts: (ctx) =>
    using(ctx.connect(), async (client) => {
      const names = (await client.listPrompts()).prompts.map((p) => p.name)
      expect(names).toContain("everything_args-prompt")
      expect(names).toContain("fx_greet")
      const got = await client.getPrompt({ name: "everything_args-prompt", arguments: { city: "Lisbon" } })
      expect(JSON.stringify(got.messages)).toContain("Lisbon")
    }),
  completion: (ctx) =>
    using(ctx.connect(), async (client) => {
      const result = await client.complete({
        ref: { type: "ref/prompt", name: "everything_completable-prompt" },
        argument: { name: "department", value: "E" }
      })
      expect(result.completion.values).toEqual(["Engineering"])
    }),
  // Over a streamable-HTTP upstream (the v2 fixture's `slow`): every step, in order, before the result.
  progress: (ctx) =>
    using(ctx.connect(), async (client) => {
      const { seen, text } = await progressOf(client, "fx_slow", { steps: 4, ms: 50 })
      expect(seen).toEqual([1, 2, 3, 4])
      expect(text).toBe("done after 4")
    }),
  // Over stdio (server-everything), three calls: the known loss of the last notification shows in most.
  "progress (stdio)": (ctx) =>
    using(ctx.connect(), async (client) => {
      for (let i = 0; i < 3; i++) {
        const { seen, text } = await progressOf(client, "everything_trigger-long-running-operation", { duration: 0.4, steps: 4 })
        expect(text).toMatch(/completed/)
        expect(seen).toEqual([1, 2, 3, 4])
      }
    }),
  sampling: (ctx) =>
    using(
      ctx.connect("alice", (client) =>
        client.setRequestHandler(CreateMessageRequestSchema, async () => ({
          role: "assistant",
          content: { type: "text", text: "v1-sampled" },
          model: "test-model"
        })), { sampling: {} }),
      async (client) => {
        const result = await client.callTool({ name: "everything_trigger-sampling-request", arguments: { prompt: "hi" } })
        expect(result.isError).toBeFalsy()
        expect(textOf(result)).toContain("v1-sampled")
      }
    ),
  elicitation: (ctx) =>
    using(
      ctx.connect("alice", (client) =>
        client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "V1 Elicited", check: true } })), {
        elicitation: {}
      }),
      async (client) => {
        const result = await client.callTool({ name: "everything_trigger-elicitation-request", arguments: {} })
        expect(result.isError).toBeFalsy()
        expect(textOf(result)).toContain("Name: V1 Elicited")
      }
    ),
  "roots (two callers)": async (ctx) => {
    const seen: Record<string, string> = {}
    for (const who of ["alice", "bob"] as const) {
      seen[who] = await using(
        ctx.connect(who, (client) =>
          client.setRequestHandler(ListRootsRequestSchema, async () => ({
            roots: [{ uri: `file:///home/${who}/project`, name: `${who}-root` }]
          })), { roots: { listChanged: true } }),
        async (client) => textOf(await client.callTool({ name: "everything_get-roots-list", arguments: {} }))
      )
    }
    expect(seen["alice"]).toContain("file:///home/alice/project")
    expect(seen["bob"]).toContain("file:///home/bob/project")
    expect(seen["bob"]).not.toContain("alice")
  },
  logging: (ctx) => {
    const messages: Array<string> = []
    return using(
      ctx.connect("alice", (client) =>
        client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
          messages.push(String(n.params.data))
        })),
      async (client) => {
        await client.setLoggingLevel("debug")
        // server-everything sends one message at once when its simulated logging starts.
        expect(textOf(await client.callTool({ name: "everything_toggle-simulated-logging", arguments: {} }))).toMatch(/^Started/)
        try {
          await eventually(() => messages.length > 0, 5_000, "a log message")
          // server-everything's own spellings: "Debug-level message", …, "Alert level-message".
          expect(messages[0]).toMatch(/level[- ]message/i)
        } finally {
          await client.callTool({ name: "everything_toggle-simulated-logging", arguments: {} })
        }
      }
    )
  },
  cancellation: (ctx) =>
    using(ctx.connect(), async (client) => {
      const before = { ...ctx.env().fx.slowCalls }
      const abort = new AbortController()
      const call = client.callTool({ name: "fx_slow", arguments: { steps: 50, ms: 100 } }, undefined, {
        signal: abort.signal,
        onprogress: () => abort.abort("enough")
      })
      await errorOf(call)
      await eventually(() => ctx.env().fx.slowCalls.cancelled > before.cancelled, 10_000, "the upstream to see the cancellation")
      expect(ctx.env().fx.slowCalls.completed).toBe(before.completed)
      // The session is still good for the next call.
      expect(textOf(await client.callTool({ name: "everything_echo", arguments: { message: "after" } }))).toBe("Echo: after")
    })
}

/** Declares `it(feature)` for each feature, inside the caller's `describe`. */
export const registerV1Features = (
  env: () => ClientsGateway,
  transportFor: TransportFor,
  features: ReadonlyArray<Feature>,
  timeout = 30_000
) => {
  const ctx: Context = {
    env,
    connect: async (caller = "alice", setup, capabilities = {}) => {
      const client = new Client({ name: `interop-${caller}`, version: "1" }, { capabilities })
      setup?.(client)
      await client.connect(await transportFor(caller))
      return client
    }
  }
  // "progress (stdio)" is the matrix's "progress" column too, from the file that holds known failures.
  for (const feature of features) it(feature === "progress (stdio)" ? "progress" : feature, () => checks[feature](ctx), timeout)
}
