/**
 * `jwt()` identity against a real authorization server (`oidc-provider`) issuing real signed
 * JWT access tokens: protected-resource metadata and a spec-following MCP client logging in by
 * itself; an expired token, a wrong audience, another issuer, a forged signature; the server
 * rotating its signing key while the gateway runs; groups from a claim. And its options on
 * their own: problems with their paths, requests without a JWT left to the next plugin.
 */
import { Client, PrivateKeyJwtProvider, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { decodeProtectedHeader, generateKeyPair, SignJWT } from "jose"
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import { Effect } from "effect"
import { Aperture, type RunningGateway } from "../../src/Aperture.js"
import { grant, jwt, loopback, mcp } from "../../src/index.js"
import { connectV2, eventually, startGateway } from "../../test/helpers/gateway.js"
import { identifierOf, issuesOf, outcome, request } from "../../test/helpers/identityPlugins.js"
import { freePort } from "../../test/helpers/processes.js"
import { type OAuthServer, startOAuthServer } from "../../test/fixtures/oauthServer.js"
import { startV2Upstream, type V2Upstream } from "../../test/fixtures/v2Upstream.js"

let as: OAuthServer
let otherAs: OAuthServer
let fx: V2Upstream
let gateway: RunningGateway
let resource: string

/** An access token from `server` (client credentials, `client_secret_post`) for `forResource`. */
const tokenFrom = async (server: OAuthServer, forResource: string, scope = "read"): Promise<string> => {
  const response = await fetch(server.tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: server.clients.post.id,
      client_secret: server.clients.post.secret,
      resource: forResource,
      scope
    })
  })
  const body = (await response.json()) as { access_token?: string; error?: string }
  if (body.access_token === undefined) throw new Error(`token request failed: ${body.error}`)
  return body.access_token
}

const initialize = (token?: string) =>
  fetch(gateway.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token !== undefined && { authorization: `Bearer ${token}` })
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
    })
  })

const refusal = async (token: string) => {
  const response = await initialize(token)
  const body = (await response.json()) as { error: { message: string } }
  return { status: response.status, challenge: response.headers.get("www-authenticate"), message: body.error.message }
}

const v1With = async (token: string) => {
  const client = new V1Client({ name: "v1-jwt", version: "1" })
  await client.connect(new V1Transport(new URL(gateway.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
  return client
}

beforeAll(async () => {
  as = await startOAuthServer()
  otherAs = await startOAuthServer()
  fx = await startV2Upstream({ name: "fx" })
  // The audience is the gateway's own URL, so the port is chosen before it starts.
  const port = await freePort()
  resource = `http://127.0.0.1:${port}/v1/mcp`
  gateway = await Aperture.start({
    server: { port },
    connectors: { fx: mcp({ url: fx.url }) },
    // groupsClaim: oidc-provider's access tokens carry no groups; their scope stands in for them.
    identity: [jwt({ issuer: as.issuer, audience: resource, groupsClaim: "scope" })],
    grants: [
      grant({ src: [as.clients.post.id, as.clients.jwt.id], connectors: ["fx/tools/echo"] }),
      grant({ src: ["group:write"], connectors: ["fx/tools/whoami"] })
    ]
  })
  await eventually(async () => {
    const client = await v1With(await tokenFrom(as, resource))
    const ready = (await client.listTools()).tools.length > 0
    await client.close()
    return ready
  }, 30_000, "fx ready through the gateway")
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
  await as?.close()
  await otherAs?.close()
})

describe("protected resource metadata (RFC 9728)", () => {
  it("answers 401 pointing at the metadata, which names the issuer and the gateway", async () => {
    const response = await initialize()
    expect(response.status).toBe(401)
    const origin = new URL(resource).origin
    expect(response.headers.get("www-authenticate")).toBe(
      `Bearer realm="aperture", resource_metadata="${origin}/.well-known/oauth-protected-resource"`
    )
    for (const path of ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/v1/mcp"]) {
      const metadata = await fetch(`${origin}${path}`)
      expect(metadata.status).toBe(200)
      expect(await metadata.json()).toEqual({
        resource,
        authorization_servers: [as.issuer],
        bearer_methods_supported: ["header"],
        resource_name: "Aperture"
      })
    }
  })

  it("is not served when no plugin accepts OAuth tokens", async () => {
    const plain = await startGateway({ identity: [loopback({ login: "local" })] })
    try {
      expect((await fetch(`${plain.origin}/.well-known/oauth-protected-resource`)).status).toBe(404)
    } finally {
      await plain.close()
    }
  })

  it("lets a spec-following MCP client log in by itself (401 → metadata → token with resource → retry)", async () => {
    const requestsBefore = as.requests.length
    const client = new Client({ name: "oauth-client", version: "1" }, { versionNegotiation: { mode: "auto" } })
    // private_key_jwt: the SDK's client_secret_basic does not form-encode the fixture's secret.
    const authProvider = new PrivateKeyJwtProvider({
      clientId: as.clients.jwt.id,
      privateKey: as.clients.jwt.privateKeyPem,
      algorithm: "ES256",
      expectedIssuer: as.issuer
    })
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url), { authProvider }))
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["fx_echo"])
    expect(await client.callTool({ name: "fx_echo", arguments: { message: "hi" } })).toMatchObject({ content: [{ text: "echo: hi" }] })
    await client.close()
    const asked = as.requests.slice(requestsBefore)
    expect(asked.some((r) => r.ok && r.clientId === as.clients.jwt.id && r.resource === resource)).toBe(true)
  })
})

describe("tokens", () => {
  it("accepts a valid token: the login is its sub, the groups come from groupsClaim", async () => {
    const reader = await v1With(await tokenFrom(as, resource, "read"))
    expect((await reader.listTools()).tools.map((t) => t.name)).toEqual(["fx_echo"])
    await reader.close()
    const writer = await v1With(await tokenFrom(as, resource, "read write"))
    expect((await writer.listTools()).tools.map((t) => t.name).sort()).toEqual(["fx_echo", "fx_whoami"])
    await writer.close()
  })

  it("refuses an expired token", async () => {
    // The authorization server's clock an hour back: a real token, signed by the real key, long expired.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() - 3600_000 })
    as.ttlSeconds = 300
    let expired: string
    try {
      expired = await tokenFrom(as, resource)
    } finally {
      vi.useRealTimers()
      as.ttlSeconds = 3600
    }
    const refused = await refusal(expired)
    expect(refused.status).toBe(401)
    expect(refused.message).toBe("Unauthorized: jwt: the token has expired")
    expect(refused.challenge).toMatch(/error="invalid_token"$/)
  })

  it("refuses a token for another audience", async () => {
    const refused = await refusal(await tokenFrom(as, "https://other.example.com/mcp"))
    expect(refused.status).toBe(401)
    expect(refused.message).toBe(`Unauthorized: jwt: the token is not for this gateway (aud must be ${resource})`)
  })

  it("does not take a token from another issuer", async () => {
    const refused = await refusal(await tokenFrom(otherAs, resource))
    expect(refused.status).toBe(401)
    expect(refused.message).toBe(`Unauthorized: no identity plugin accepts this Bearer token (tokens are accepted from ${as.issuer})`)
    expect(refused.challenge).toMatch(/error="invalid_token"$/)
  })

  it("refuses a token naming the issuer but signed with another key, even under the issuer's kid", async () => {
    const { privateKey } = await generateKeyPair("RS256")
    const forged = await new SignJWT({ scope: "read write" })
      .setProtectedHeader({ alg: "RS256", kid: as.currentKid(), typ: "at+jwt" })
      .setIssuer(as.issuer)
      .setAudience(resource)
      .setSubject(as.clients.post.id)
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(privateKey)
    const refused = await refusal(forged)
    expect(refused.status).toBe(401)
    expect(refused.message).toBe("Unauthorized: jwt: the token's signature is invalid")
    // An HMAC token "signed" with the issuer's public key (algorithm confusion) does not verify either.
    const publicJwk = ((await (await fetch(as.jwksUrl)).json()) as { keys: Array<{ n: string }> }).keys[0]!
    const hmac = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256", kid: as.currentKid() })
      .setIssuer(as.issuer)
      .setAudience(resource)
      .setSubject(as.clients.post.id)
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(publicJwk.n))
    expect((await refusal(hmac)).message).toBe("Unauthorized: jwt: the token's signing algorithm is not accepted")
  })

  it("follows the issuer's key rotation without a restart", async () => {
    const before = await tokenFrom(as, resource)
    const oldKid = decodeProtectedHeader(before).kid
    const client = await v1With(before)
    expect((await client.listTools()).tools.length).toBeGreaterThan(0)
    await client.close()

    const newKid = await as.rotateSigningKey()
    const after = await tokenFrom(as, resource)
    expect(decodeProtectedHeader(after).kid).toBe(newKid)
    expect(newKid).not.toBe(oldKid)
    // The new kid is unknown to the cached key set: the gateway fetches the JWKS again
    // (at most once per cooldown, so the first attempt may come too early).
    await eventually(async () => (await initialize(after)).status === 200, 30_000, "token signed with the new key accepted")
    // Tokens signed with the old key are still good while the issuer publishes it.
    expect((await initialize(before)).status).toBe(200)
  })
})

describe("jwt options", () => {
  it.effect("reports problems with their paths", () =>
    Effect.gen(function*() {
      expect(yield* issuesOf([
        loopback({ login: "me" }),
        jwt({ issuer: "http://idp.example.com", audience: "aperture" }),
        jwt({ issuer: "https://idp.example.com", audience: [] as never, jwksUrl: "http://idp.example.com/jwks", extra: 1 } as never)
      ])).toEqual(expect.arrayContaining([
        "identity.1.issuer: keys are discovered from the issuer, and plain http is allowed only to localhost; use https; or give jwksUrl",
        "identity.2.audience: expected a non-empty string or a non-empty list of them",
        expect.stringMatching(/^identity\.2\.jwksUrl: jwksUrl: plain http is allowed only to localhost/),
        expect.stringMatching(/^identity\.2\.extra: unexpected field/)
      ]))
    }))

  it.effect("leaves requests without a JWT to the next plugin", () =>
    Effect.gen(function*() {
      const identifier = yield* identifierOf(jwt({ issuer: "https://idp.example.com", audience: "aperture" }))
      expect(yield* outcome(identifier, request())).toBeUndefined()
      expect(yield* outcome(identifier, request({ headers: { authorization: "Bearer not-a-jwt" } }))).toBeUndefined()
      expect(identifier.authorizationServer).toEqual({ issuer: "https://idp.example.com", resource: undefined })
    }))
})
