/**
 * Header hygiene of the HTTP connector proxy, against a real node:http upstream that records
 * what it received: the caller's gateway credential (whatever header an identity plugin reads
 * it from) and path/method override headers never reach the upstream; every proxied response
 * is sandboxed and `nosniff`, since it is served on the gateway's origin.
 */
import { Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { apiKeys, bearer, defineIdentityPlugin, grant, http, loopback, trustedHeaders } from "../src/index.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { rawRequest } from "./helpers/http.js"
import { startGateway } from "./helpers/gateway.js"

/** A third-party plugin naming its header in its options: `consumes` as a function of them. */
const headerUser = defineIdentityPlugin({
  name: "headerUser",
  options: Schema.Struct({ header: Schema.String }),
  consumes: ({ header }) => [header],
  make: ({ header }) =>
    Effect.succeed({
      identify: (request) => {
        const login = request.headers[header.toLowerCase()]
        return Effect.succeed(login === undefined ? undefined : { login, groups: [], tags: [], via: "headerUser" })
      }
    })
})

/** A plugin written before `consumes` existed still loads (and its header is forwarded, as before). */
const legacyUser = defineIdentityPlugin({
  name: "legacyUser",
  options: Schema.Struct({}),
  make: () =>
    Effect.succeed({
      identify: (request) => {
        const login = request.headers["x-legacy-user"]
        return Effect.succeed(login === undefined ? undefined : { login, groups: [], tags: [], via: "legacyUser" })
      }
    })
})

const API_KEY = "caller-gateway-key-0123456789"

let upstream: HttpUpstream
let gateway: RunningGateway

beforeAll(async () => {
  upstream = await startHttpUpstream()
  gateway = await startGateway({
    connectors: {
      api: http({ url: `${upstream.origin}/api`, allowPrivate: true, auth: bearer({ secret: "upstream-token" }) })
    },
    identity: [
      apiKeys({ keys: { [API_KEY]: { login: "keyed" } } }),
      headerUser({ header: "X-Custom-Login" }),
      legacyUser({}),
      trustedHeaders(),
      loopback({ login: "local" })
    ],
    grants: [grant({ src: ["keyed", "custom", "legacy", "ts-user@example.com", "local"], connectors: ["api/proxy/**"] })]
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

/** What the upstream received for one proxied GET. */
const seenFor = async (headers: Record<string, string>) => {
  const before = upstream.seen.length
  const response = await rawRequest(gateway.origin, "/v1/connectors/api/echo", { headers })
  expect(response.status, response.body).toBe(200)
  expect(upstream.seen.length).toBe(before + 1)
  return upstream.seen.at(-1)!.headers
}

describe("the caller's gateway credential", () => {
  it("is not forwarded: X-API-Key", async () => {
    const seen = await seenFor({ "x-api-key": API_KEY, accept: "application/json" })
    expect(seen["x-api-key"]).toBeUndefined()
    expect(seen.authorization).toBe("Bearer upstream-token")
    expect(seen.accept).toBe("application/json")
  })

  it("is not forwarded: Tailscale-User-Login and -Name", async () => {
    const seen = await seenFor({ "tailscale-user-login": "ts-user@example.com", "tailscale-user-name": "TS User" })
    expect(seen["tailscale-user-login"]).toBeUndefined()
    expect(seen["tailscale-user-name"]).toBeUndefined()
  })

  it("is not forwarded when any configured plugin reads it, whoever identified the caller; a plugin without consumes still works", async () => {
    // Identified by X-API-Key; the header another configured plugin reads goes nowhere either.
    const seen = await seenFor({ "x-api-key": API_KEY, "x-custom-login": "custom" })
    expect(seen["x-custom-login"]).toBeUndefined()
    expect(seen["x-api-key"]).toBeUndefined()
    const legacy = await seenFor({ "x-legacy-user": "legacy" })
    expect(legacy["x-legacy-user"]).toBe("legacy")
  })
})
