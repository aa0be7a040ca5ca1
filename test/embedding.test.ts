/**
 * Embedding: `Aperture.layer(config)` serves on its own Node server, on the `HttpServer` the host
 * provides, or on the host's `HttpLayerRouter` next to the host's own routes; closing the
 * scope stops it. `Aperture.start` is the promise face of the same thing.
 */
import { createServer } from "node:http"
import { HttpLayerRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Exit, Layer, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
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

/** Builds a layer in a scope of its own; returns its HttpServer's origin and a close function. */
const build = async <E>(layer: Layer.Layer<HttpServer.HttpServer, E>) => {
  const scope = Effect.runSync(Scope.make())
  const runtime = await Effect.runPromise(Layer.toRuntime(layer).pipe(Scope.extend(scope)))
  const address = Effect.runSync(Effect.provide(HttpServer.HttpServer, runtime)).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return {
    origin: `http://127.0.0.1:${address.port}`,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

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

describe("Aperture.layer", () => {
  it("serves on a Node server of its own at config.server.port", async () => {
    const port = await freePort()
    const scope = Effect.runSync(Scope.make())
    const origin = `http://127.0.0.1:${port}`
    try {
      await Effect.runPromise(Layer.buildWithScope(Aperture.layer({ ...config, server: { port } }), scope))
      await expectGateway(origin)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
    expect(await refused(origin)).toBe(true)
  })

  it("serves on the HttpServer the host provides", async () => {
    const host = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })
    const gateway = await build(Aperture.layer(config).pipe(Layer.provideMerge(host)))
    try {
      await expectGateway(gateway.origin)
    } finally {
      await gateway.close()
    }
    expect(await refused(gateway.origin)).toBe(true)
  })

  it("adds its routes to the host's HttpLayerRouter, next to the host's own", async () => {
    const hostRoutes = HttpLayerRouter.add("GET", "/hello", HttpServerResponse.text("hello from the host"))
    const app = HttpLayerRouter.serve(Layer.mergeAll(hostRoutes, Aperture.layer(config)), { disableLogger: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
    )
    const gateway = await build(app)
    try {
      expect(await (await fetch(`${gateway.origin}/hello`)).text()).toBe("hello from the host")
      await expectGateway(gateway.origin)
    } finally {
      await gateway.close()
    }
  })
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
