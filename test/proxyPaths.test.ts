/**
 * Dot segments carrying path parameters (`..;`, `%2e%2e;x`, `.;`) end to end: servlet containers
 * (Tomcat, Jetty, Spring) drop `;params` and then resolve the dot segment, so `public/..;/private`
 * would reach `/base/private` past a `public/**` grant. The gateway refuses them with a 400 before
 * the grant check, and the upstream sees nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, http, loopback } from "../src/index.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { startGateway } from "./helpers/gateway.js"
import { jsonOf, rawRequest } from "./helpers/http.js"

let upstream: HttpUpstream
let gateway: RunningGateway

beforeAll(async () => {
  upstream = await startHttpUpstream()
  gateway = await startGateway({
    connectors: { limited: http({ url: `${upstream.origin}/api`, allowPrivate: true }) },
    identity: [loopback({ login: "local" })],
    grants: [grant({ src: ["local"], connectors: ["limited/proxy/public/**"] })]
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

describe("path parameters on dot segments", () => {
  it("refuses ..; and .; spellings with a 400 naming the problem, and forwards none of them", async () => {
    const corpus = [
      "/public/..;/private",
      "/public/..;x=1/private",
      "/public/%2e%2e;x/private",
      "/public/%2E%2e%3bx/private",
      "/public/.;/x",
      "/public/%2e;jsessionid=1/x",
      "/public/;x/../private"
    ]
    const before = upstream.seen.length
    for (const path of corpus) {
      const response = await rawRequest(gateway.origin, `/v1/connectors/limited${path}`)
      expect(response.status, path).toBe(400)
      const body = jsonOf<{ error: string; message: string; connector: string }>(response)
      expect(body, path).toMatchObject({ error: "invalid_path", connector: "limited" })
      expect(body.message, path).toMatch(/dot segment|empty path segment/)
    }
    expect(upstream.seen.length).toBe(before)
  })

  it("still forwards granted paths with ordinary path parameters", async () => {
    const response = await rawRequest(gateway.origin, "/v1/connectors/limited/public/cars;color=red")
    expect(response.status).toBe(200)
    expect(upstream.seen.at(-1)?.url).toBe("/api/public/cars;color=red")
  })
})
