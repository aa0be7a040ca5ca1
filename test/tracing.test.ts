/**
 * Spans: `Aperture.layer` under a host's tracer makes the platform's `http.server` span and an
 * `McpEndpoint.handle` span for each request; run as `aperture start` runs it (`withoutTracing`),
 * no span reaches a tracer at all.
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import type { RunningGateway } from "../src/Aperture.js"
import { withoutTracing } from "../src/http/tracing.js"
import { grant } from "../src/index.js"
import { type Captured, startCapturingGateway } from "./helpers/capture.js"

const initialize = (url: string) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "tracing-test", version: "1" } }
    })
  })

let gateway: (RunningGateway & { readonly captured: Captured }) | undefined

afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

/** Spans end after the response is written: wait for `count` of them. */
const spansEnded = async (captured: Captured, name: string, count: number) => {
  for (let i = 0; i < 100 && captured.spans.filter((s) => s.startsWith(name)).length < count; i++) {
    await new Promise((r) => setTimeout(r, 20))
  }
  return captured.spans.filter((s) => s.startsWith(name))
}

describe("tracing", () => {
  it("with a host's tracer, each /v1/mcp request has an http.server span and an McpEndpoint.handle span", async () => {
    gateway = await startCapturingGateway({ connectors: {}, grants: [grant({ src: ["local"], connectors: ["**"] })] })
    const answer = await initialize(gateway.url)
    expect(answer.status).toBe(200)
    await answer.text()
    expect(await spansEnded(gateway.captured, "McpEndpoint.handle", 1)).toHaveLength(1)
    const server = await spansEnded(gateway.captured, "http.server POST", 1)
    expect(server).toHaveLength(1)
    expect(server[0]).toContain(`"url.path":"/v1/mcp"`)
  })

  it("run as `aperture start` runs it, no span is made", async () => {
    gateway = await startCapturingGateway({ connectors: {}, grants: [grant({ src: ["local"], connectors: ["**"] })] }, { untraced: true })
    const answer = await initialize(gateway.url)
    expect(answer.status).toBe(200)
    await answer.text()
    await new Promise((r) => setTimeout(r, 200))
    expect(gateway.captured.spans).toEqual([])
  })

  it.effect("run as `aperture start` runs it, the platform skips its per-request span work (URL, headers, trace context)", () =>
    Effect.gen(function*() {
      const disabledWhen = yield* withoutTracing(FiberRef.get(HttpMiddleware.currentTracerDisabledWhen))
      expect(disabledWhen({ url: "/v1/mcp" } as HttpServerRequest.HttpServerRequest)).toBe(true)
      // Outside it, the platform's default: traced.
      expect((yield* FiberRef.get(HttpMiddleware.currentTracerDisabledWhen))({ url: "/v1/mcp" } as HttpServerRequest.HttpServerRequest)).toBe(false)
    }))
})
