/**
 * Shutdown's drain of the HTTP connector proxy ends at its timeout even when a proxied request
 * never ends: drain runs in a finalizer (an uninterruptible region), where a plain timeout could
 * not stop the wait, and one stuck upstream held shutdown for ever.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Aperture } from "../src/Aperture.js"
import { grant, http } from "../src/index.js"
import { HttpProxy } from "../src/proxy/HttpProxy.js"
import { startHttpUpstream } from "./fixtures/httpUpstream.js"

// Live clock: the drain's timeout is measured against a real socket that never answers.
it.scopedLive("a drain whose proxied request never ends stops at its timeout, though shutdown runs it uninterruptibly", () =>
  Effect.gen(function*() {
    const upstream = yield* Effect.acquireRelease(Effect.promise(() => startHttpUpstream()), (upstream) => Effect.promise(() => upstream.close()))
    // Built in the test's scope, so it shuts down (draining again) before the upstream closes.
    const gateway = yield* Layer.build(Aperture.layerOwnServer({
      server: { port: 0 },
      connectors: { api: http({ url: `${upstream.origin}/api`, allowPrivate: true }) },
      grants: [grant({ src: ["local"], connectors: ["**"] })]
    }))
    const address = Context.get(gateway, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    // The upstream takes the request and never answers.
    const caller = new AbortController()
    const stuck = fetch(`http://127.0.0.1:${address.port}/v1/connectors/api/slow`, { signal: caller.signal }).catch(() => undefined)
    const proxy = Context.get(gateway, HttpProxy)
    while (proxy.inFlight() === 0) yield* Effect.sleep("20 millis")
    const started = Date.now()
    yield* Effect.uninterruptible(proxy.drain(200))
    const took = Date.now() - started
    expect(took).toBeGreaterThanOrEqual(190)
    expect(took).toBeLessThan(5_000)
    // The caller leaves, so the gateway's own shutdown has nothing left to wait for.
    caller.abort()
    yield* Effect.promise(() => stuck)
  }), 20_000)
