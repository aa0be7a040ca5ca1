/**
 * OAuth 2.0 client credentials against a real authorization server (oidc-provider) and an
 * upstream that verifies the JWT access tokens it issues: the three client authentication
 * methods, discovery, expiry and early refresh, single-flight, 401 → refresh → retry (and no
 * replay of tools/call), redirect refusal, and a failing token endpoint → misconfigured → recovery.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Duration, Effect, Exit, Fiber, Scope, TestClock, TestContext } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { clientCredentials } from "../plugins/auth/clientCredentials.js"
import type { Credential } from "../src/auth/AuthPlugin.js"
import { isAuthPlugin, AuthPluginTypeId } from "../src/auth/AuthPlugin.js"
import { grant, mcp } from "../src/config/dsl.js"
import { startCapturingGateway } from "./helpers/capture.js"
import { connectorsOf, connectV2, eventually } from "./helpers/gateway.js"
import { type OAuthServer, startOAuthServer } from "./fixtures/oauthServer.js"
import { type ProtectedUpstream, startProtectedUpstream } from "./fixtures/protectedUpstream.js"

let as: OAuthServer
let upstream: ProtectedUpstream

beforeAll(async () => {
  as = await startOAuthServer()
  upstream = await startProtectedUpstream({ kind: "oauth", issuer: as.issuer, jwksUrl: as.jwksUrl })
})

afterAll(async () => {
  await upstream?.close()
  await as?.close()
})

type Method = "client_secret_basic" | "client_secret_post" | "private_key_jwt"

/** clientCredentials options for one of the authorization server's clients. */
const optionsFor = (method: Method) =>
  method === "client_secret_basic"
    ? { clientId: as.clients.basic.id, clientSecret: as.clients.basic.secret }
    : method === "client_secret_post"
    ? { clientId: as.clients.post.id, clientSecret: as.clients.post.secret, authMethod: method }
    : { clientId: as.clients.jwt.id, privateKey: as.clients.jwt.privateKeyPem, authMethod: method }

const everything = [grant({ src: ["local"], connectors: ["**"] })]

/** Makes the credential directly, as a connector does, in a scope the test closes. */
const makeCredential = (options: Parameters<typeof clientCredentials>[0], upstreamUrl?: string) =>
  Effect.gen(function*() {
    const plugin = clientCredentials(options)
    if (!isAuthPlugin(plugin)) throw new Error("not a plugin")
    const spec = plugin[AuthPluginTypeId]
    const { Schema } = yield* Effect.promise(() => import("effect"))
    const decoded = yield* Schema.decodeUnknown(spec.options)(plugin.options)
    return (yield* spec.make(decoded, {
      connectorId: "test",
      upstreamUrl: upstreamUrl === undefined ? undefined : new URL(upstreamUrl)
    })) as Credential
  })

const request = () => ({ url: new URL(upstream.url), method: "POST", headers: new Headers(), body: undefined })
const bearerOf = (credential: Credential) =>
  Effect.map(credential.authorize(request()), (a) => a.headers?.["authorization"] ?? "")

const tokenRequestsOf = (clientId: string) => as.requests.filter((r) => r.clientId === clientId)

describe("client authentication at the token endpoint", () => {
  it("client_secret_basic (form-encoded before Base64), client_secret_post and private_key_jwt all get tokens the upstream accepts", async () => {
    const before = as.requests.length
    const gateway = await startCapturingGateway({
      connectors: {
        basic: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_basic"), tokenUrl: as.tokenUrl, resource: upstream.url, scopes: ["read"] }) }),
        post: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_post"), tokenUrl: as.tokenUrl, resource: upstream.url, scopes: ["read"] }) }),
        jwt: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("private_key_jwt"), tokenUrl: as.tokenUrl, resource: upstream.url, scopes: ["read"] }) })
      },
      grants: everything
    })
    try {
      await eventually(async () => (await connectorsOf(gateway)).connectors.every((c) => c.status === "ready"), 30_000, "all ready")
      const client = await connectV2(gateway.url)
      for (const id of ["basic", "post", "jwt"]) {
        expect(await client.callTool({ name: `${id}_echo`, arguments: { message: id } })).toMatchObject({
          content: [{ type: "text", text: `echo: ${id}` }]
        })
      }
      await client.close()
      const requests = as.requests.slice(before).filter((r) => r.ok)
      expect(new Set(requests.map((r) => `${r.clientId} ${r.authMethod}`))).toEqual(
        new Set([
          `${as.clients.basic.id} client_secret_basic`,
          `${as.clients.post.id} client_secret_post`,
          `${as.clients.jwt.id} private_key_jwt`
        ])
      )
      expect(requests.every((r) => r.scope === "read")).toBe(true)
      // One token each, however many requests the connection made.
      expect(requests).toHaveLength(3)
    } finally {
      await gateway.close()
    }
  })
})

describe("discovery", () => {
  it("finds the token endpoint from the upstream's 401 and metadata, and sends the upstream as resource", async () => {
    const before = as.requests.length
    const prmFetches = () => upstream.requests.length
    const gateway = await startCapturingGateway({
      connectors: { found: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("private_key_jwt") }) }) },
      grants: everything
    })
    try {
      await eventually(async () => (await connectorsOf(gateway)).connectors[0]?.status === "ready", 30_000, "ready")
      const client = await connectV2(gateway.url)
      expect(await client.callTool({ name: "found_echo", arguments: { message: "hi" } })).toMatchObject({ content: [{ text: "echo: hi" }] })
      await client.close()
      const requests = as.requests.slice(before)
      expect(requests.filter((r) => r.ok)).toHaveLength(1)
      expect(requests[0]).toMatchObject({ clientId: as.clients.jwt.id, authMethod: "private_key_jwt", resource: upstream.url })
      expect(prmFetches()).toBeGreaterThan(0)
    } finally {
      await gateway.close()
    }
  })
})
