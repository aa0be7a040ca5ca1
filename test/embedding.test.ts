/**
 * Embedding: `Aperture.layer(config)` serves on its own Node server, on the `HttpServer` the host
 * provides, or on the host's `HttpLayerRouter` next to the host's own routes; closing the
 * scope stops it. `Aperture.layerOwnServer` is the own-server form that provides its `HttpServer`;
 * `Aperture.start` is the promise face of the same thing.
 */
import { createServer } from "node:http"
import { HttpLayerRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Aperture } from "../src/Aperture.js"
import { grant, http, type UserConfig } from "../src/index.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { connectV2, everythingStdio } from "./helpers/gateway.js"
import { freePort } from "./helpers/processes.js"

let api: HttpUpstream
let config: UserConfig

beforeAll(async () => {
  api = await startHttpUpstream()
  config = {
    connectors: { everything: everythingStdio(), api: http({ url: `${api.origin}/api`, allowPrivate: true }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  }
})

afterAll(async () => {
  await api?.close()
})

/** Builds `layer` in the current scope (closing it stops the server); returns its HttpServer's origin. */
const serve = <E>(layer: Layer.Layer<HttpServer.HttpServer, E>) =>
  Effect.gen(function*() {
    const address = Context.get(yield* Layer.build(layer), HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return `http://127.0.0.1:${address.port}`
  })

// Compile-time: `Aperture.layer` claims no `HttpServer`, since on a router alone (behind a web
// handler) it has none; this line stops compiling if the type ever claims one again.
const layerClaimsNoServer: HttpServer.HttpServer extends Layer.Layer.Success<ReturnType<typeof Aperture.layer>> ? never : true = true
void layerClaimsNoServer

/** The gateway answers on `origin`: MCP tools, the admin API and the HTTP proxy. */
const expectGateway = async (origin: string) => {
  const client = await connectV2(`${origin}/v1/mcp`)
  const names = await (async () => {
    for (let i = 0; i < 300; i++) {
      const tools = (await client.listTools()).tools.map((t) => t.name)
      if (tools.includes("everything_echo")) return tools
      await new Promise((r) => setTimeout(r, 100))
    }
    return []
  })()
  expect(names).toContain("everything_echo")
  expect(names).toContain("aperture_list_connectors")
  await client.close()
  expect((await fetch(`${origin}/v1/connectors/api/embedded`)).status).toBe(200)
  expect(api.seen.at(-1)?.url).toBe("/api/embedded")
  const connectors = await (await fetch(`${origin}/api/connectors`)).json() as { connectors: Array<{ id: string }> }
  expect(connectors.connectors.map((c) => c.id)).toEqual(["everything", "api"])
}

const refused = async (origin: string) => {
  try {
    await fetch(`${origin}/healthz`)
    return false
  } catch {
    return true
  }
}

// Each test serves in a scope of its own (Effect.scoped) so it can check, once that scope has
// closed, that nothing listens any more. Real sockets and timers: the live clock.
describe("Aperture.layer", () => {
  it.live("serves on a Node server of its own at config.server.port", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const origin = `http://127.0.0.1:${port}`
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(Aperture.layer({ ...config, server: { port } }))
        yield* Effect.promise(() => expectGateway(origin))
      }))
      expect(yield* Effect.promise(() => refused(origin))).toBe(true)
    }))

  it.live("serves on the HttpServer the host provides", () =>
    Effect.gen(function*() {
      const host = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })
      const origin = yield* Effect.scoped(Effect.gen(function*() {
        const origin = yield* serve(Aperture.layer(config).pipe(Layer.provideMerge(host)))
        yield* Effect.promise(() => expectGateway(origin))
        return origin
      }))
      expect(yield* Effect.promise(() => refused(origin))).toBe(true)
    }))

  it.live("layerOwnServer provides its own HttpServer, whose address has the port chosen for port 0", () =>
    Effect.gen(function*() {
      const origin = yield* Effect.scoped(Effect.gen(function*() {
        const origin = yield* serve(Aperture.layerOwnServer({ ...config, server: { host: "127.0.0.1", port: 0 } }))
        expect(origin).not.toBe("http://127.0.0.1:0")
        yield* Effect.promise(() => expectGateway(origin))
        return origin
      }))
      expect(yield* Effect.promise(() => refused(origin))).toBe(true)
    }))

  it.scopedLive("adds its routes to the host's HttpLayerRouter, next to the host's own", () =>
    Effect.gen(function*() {
      const hostRoutes = HttpLayerRouter.add("GET", "/hello", HttpServerResponse.text("hello from the host"))
      const app = HttpLayerRouter.serve(Layer.mergeAll(hostRoutes, Aperture.layer(config)), { disableLogger: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
      )
      const origin = yield* serve(app)
      expect(yield* Effect.promise(async () => (await fetch(`${origin}/hello`)).text())).toBe("hello from the host")
      yield* Effect.promise(() => expectGateway(origin))
    }))
})

describe("Aperture.start", () => {
  it("returns the MCP URL and a close that stops listening", async () => {
    const gateway = await Aperture.start({ ...config, server: { port: 0 } })
    expect(gateway.url).toBe(`${gateway.origin}/v1/mcp`)
    await expectGateway(gateway.origin)
    await gateway.close()
    expect(await refused(gateway.origin)).toBe(true)
  })

  it("rejects with ListenFailed (in_use) when the port is taken, not the platform's bare ServeError", async () => {
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve))
    const port = (holder.address() as { port: number }).port
    try {
      const failed = await Aperture.start({ grants: [], server: { host: "127.0.0.1", port } }).then(() => undefined, (error: unknown) => error)
      expect(failed).toMatchObject({ _tag: "ListenFailed", reason: "in_use", host: "127.0.0.1", port })
      expect((failed as Error).message).toBe(`port ${port} on 127.0.0.1 is in use`)
    } finally {
      await new Promise((resolve) => holder.close(resolve))
    }
  })
})
