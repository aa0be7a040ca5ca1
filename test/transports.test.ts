/**
 * Upstream pagination, the gateway's own pagination, MCP over WebSocket, and transports as an
 * extension point: the registry's schemes are what config accepts, and every registered
 * transport connects to a real upstream.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { bearer, decodeConfig, grant, mcp, stdio } from "../src/index.js"
import { PROCESS_TRANSPORT, URL_TRANSPORTS } from "../src/upstream/transports/registry.js"
import { connectV1, connectV2, eventually, startGateway, statusOf } from "./helpers/gateway.js"
import { everythingSse, freePort, repoRoot } from "./helpers/processes.js"
import { startManyToolsUpstream } from "./fixtures/manyToolsUpstream.js"
import { startV2Upstream } from "./fixtures/v2Upstream.js"
import { startWebSocketUpstream } from "./fixtures/webSocketUpstream.js"

const allowAll = [grant({ src: ["local"], connectors: ["**"] })]

describe("pagination", () => {
  it("reads every page of an upstream's list, and pages its own lists with an opaque cursor", async () => {
    const upstream = await startManyToolsUpstream(2500, 100)
    const gateway = await startGateway({ connectors: { many: mcp({ url: upstream.url }) }, grants: allowAll })
    try {
      await eventually(async () => (await statusOf(gateway, "many")) === "ready", 30_000)
      const { client } = await connectV1(gateway.url)
      const first = await client.listTools()
      expect(first.tools).toHaveLength(1000)
      expect(first.nextCursor).toEqual(expect.any(String))
      const names = first.tools.map((t) => t.name)
      let cursor = first.nextCursor
      let pages = 1
      while (cursor !== undefined) {
        const next = await client.listTools({ cursor })
        names.push(...next.tools.map((t) => t.name))
        cursor = next.nextCursor
        pages++
      }
      expect(pages).toBe(3)
      expect(new Set(names).size).toBe(2500)
      expect(names[2499]).toBe("many_t02499")
      await expect(client.listTools({ cursor: "not-a-cursor" })).rejects.toThrow(/cursor/i)
      expect(await client.callTool({ name: "many_t02499", arguments: {} })).toMatchObject({ content: [{ text: "called t02499" }] })
      // The v2 client walks all pages itself.
      const v2 = await connectV2(gateway.url)
      expect((await v2.listTools()).tools).toHaveLength(2500)
      await v2.close()
      await client.close()
    } finally {
      await gateway.close()
      await upstream.close()
    }
  })
})

describe("WebSocket upstreams", () => {
  it("speaks MCP over ws:// with the credential in the handshake", async () => {
    const upstream = await startWebSocketUpstream({ requireHeader: ["authorization", "Bearer ws-secret"] })
    const gateway = await startGateway({
      connectors: { sock: mcp({ url: upstream.url, auth: bearer({ secret: "ws-secret" }) }) },
      grants: allowAll
    })
    try {
      await eventually(async () => (await statusOf(gateway, "sock")) === "ready", 30_000)
      const client = await connectV2(gateway.url)
      expect(await client.callTool({ name: "sock_shout", arguments: { text: "hi" } })).toMatchObject({
        content: [{ type: "text", text: "HI" }]
      })
      await client.close()
    } finally {
      await gateway.close()
      await upstream.close()
    }
  })
})

describe("transports registry", () => {
  const registeredSchemes = URL_TRANSPORTS.flatMap((transport) => [...transport.schemes])

  it.effect("mcp({ url }) accepts exactly the registered transports' URL schemes", () =>
    Effect.gen(function*() {
      const decode = (url: string) => Effect.either(decodeConfig({ connectors: { x: mcp({ url }) } }))
      expect(registeredSchemes.length).toBeGreaterThan(0)
      for (const scheme of registeredSchemes) {
        expect((yield* decode(`${scheme}//127.0.0.1:9/mcp`))._tag, scheme).toBe("Right")
      }
      const refused = yield* decode("ftp://127.0.0.1:9/mcp")
      if (refused._tag !== "Left") throw new Error("an unregistered scheme was accepted")
      expect(refused.left.issues).toEqual([{
        path: "connectors.x.url",
        message: `unsupported scheme "ftp:"; expected ${registeredSchemes.map((scheme) => scheme.slice(0, -1)).join(", ")}`
      }])
    }))

  it("every registered transport connects to a real upstream and serves its tools", async () => {
    const ssePort = await freePort()
    const sseOnly = everythingSse(ssePort)
    const [modern, socket] = await Promise.all([startV2Upstream(), startWebSocketUpstream(), sseOnly.waitFor(/listening|running|port/i)])
    // One connector per registered transport, each served by a real peer of that transport.
    const byTransport: Record<string, { readonly connector: ReturnType<typeof mcp> | ReturnType<typeof stdio>; readonly tool: string; readonly args: Record<string, unknown>; readonly answer: RegExp }> = {
      "streamable-http": { connector: mcp({ url: modern.url }), tool: "echo", args: { message: "hi" }, answer: /^echo: hi$/ },
      sse: { connector: mcp({ url: `http://127.0.0.1:${ssePort}/sse` }), tool: "echo", args: { message: "hi" }, answer: /^Echo: hi$/ },
      websocket: { connector: mcp({ url: socket.url }), tool: "shout", args: { text: "hi" }, answer: /^HI$/ },
      stdio: {
        connector: stdio({ command: process.execPath, args: ["--import", "tsx", `${repoRoot}test/fixtures/stdioUpstream.ts`], cwd: repoRoot }),
        tool: "pid",
        args: {},
        answer: /^\d+$/
      }
    }
    const registered = [...URL_TRANSPORTS.map((transport) => transport.name), PROCESS_TRANSPORT.name]
    // A transport added to the registry needs its upstream here.
    expect(Object.keys(byTransport).sort()).toEqual([...registered].sort())
    const ids = Object.fromEntries(registered.map((name) => [name, name.replace(/[^a-z]/g, "")]))
    const gateway = await startGateway({
      connectors: Object.fromEntries(registered.map((name) => [ids[name]!, byTransport[name]!.connector])),
      grants: allowAll
    })
    try {
      const connectors = await eventually(async () => {
        const { connectors: listed } = (await (await fetch(`${gateway.origin}/api/connectors`)).json()) as {
          connectors: Array<{ id: string; status: string; transport: string }>
        }
        return listed.length === registered.length && listed.every((c) => c.status === "ready") && listed
      }, 30_000, "every connector ready")
      expect(Object.fromEntries(connectors.map((c) => [c.id, c.transport]))).toEqual(
        Object.fromEntries(registered.map((name) => [ids[name], name]))
      )
      const client = await connectV2(gateway.url)
      try {
        for (const name of registered) {
          const { answer, args, tool } = byTransport[name]!
          const result = await client.callTool({ name: `${ids[name]}_${tool}`, arguments: args }) as { content: Array<{ text?: string }> }
          expect(result.content[0]?.text, name).toMatch(answer)
        }
      } finally {
        await client.close()
      }
    } finally {
      await gateway.close()
      await Promise.all([modern.close(), socket.close(), sseOnly.kill()])
    }
  }, 60_000)
})
