/**
 * Shutdown's drain of the HTTP connector proxy ends at its timeout even when a proxied request
 * never ends: drain runs in a finalizer (an uninterruptible region), where a plain timeout could
 * not stop the wait, and one stuck upstream held shutdown for ever.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { expect, it } from "vitest"
import { Aperture } from "../src/Aperture.js"
import { grant, http } from "../src/index.js"
import { HttpProxy } from "../src/proxy/HttpProxy.js"
import { startHttpUpstream } from "./fixtures/httpUpstream.js"

it("a drain whose proxied request never ends stops at its timeout, though shutdown runs it uninterruptibly", async () => {
  const upstream = await startHttpUpstream()
  const runtime = ManagedRuntime.make(Aperture.layerOwnServer({
    server: { port: 0 },
    connectors: { api: http({ url: `${upstream.origin}/api`, allowPrivate: true }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  }))
  try {
    const address = await runtime.runPromise(Effect.map(HttpServer.HttpServer, (server) => server.address))
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    // The upstream takes the request and never answers.
    const caller = new AbortController()
    const stuck = fetch(`http://127.0.0.1:${address.port}/v1/connectors/api/slow`, { signal: caller.signal }).catch(() => undefined)
    const proxy = await runtime.runPromise(HttpProxy)
    while (proxy.inFlight() === 0) await new Promise((resolve) => setTimeout(resolve, 20))
    const started = Date.now()
    await runtime.runPromise(Effect.uninterruptible(proxy.drain(200)))
    const took = Date.now() - started
    expect(took).toBeGreaterThanOrEqual(190)
    expect(took).toBeLessThan(5_000)
    // The caller leaves, so the gateway's own shutdown has nothing left to wait for.
    caller.abort()
    await stuck
  } finally {
    await runtime.dispose().catch(() => {})
    await upstream.close()
  }
}, 20_000)
