/**
 * Per-user OAuth connectors end to end (issue 21), against a real authorization server
 * (oidc-provider: authorization code + PKCE, refresh tokens, dynamic registration, introspection)
 * and an MCP upstream that serves each user with their own token and says whose token a call
 * carried. The browser's part (login and consent at the provider) is driven over HTTP by
 * `authorizeHeadlessly`; the gateway's callback is then fetched as the browser would.
 *
 * - not connected: `needs_auth` in /api/connectors, none of the connector's tools listed, and a
 *   call answered with the link to connect (a tool error), or a URL elicitation the client
 *   accepts, after which the call goes on;
 * - connected: `ready`, tools listed, each user's calls carry their own token;
 * - disconnect forgets (and revokes) the tokens; a restart keeps them (the SQLite store); another
 *   secretKey reads them as absent (users connect again), never a crash;
 * - a dynamic connector discovers the provider from the upstream and registers a client.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ElicitRequestSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Aperture, type RunningGateway } from "../src/Aperture.js"
import { apiKeys, grant, mcp, userOAuth } from "../src/index.js"
import type { UserConfig } from "../src/config/dsl.js"
import { authorizeHeadlessly, type OAuthCodeServer, registerApp, startOAuthCodeServer } from "./fixtures/oauthCodeServer.js"
import { startUserTokenUpstream, type UserTokenUpstream } from "./fixtures/userTokenUpstream.js"
import { eventually } from "./helpers/gateway.js"
import { freePort } from "./helpers/processes.js"

const SECRET_KEY = "the per-user test's secret key, 32 characters or more"
const KEYS = {
  alice: `alice-${crypto.randomUUID()}`,
  bob: `bob-${crypto.randomUUID()}`,
  carol: `carol-${crypto.randomUUID()}`,
  dave: `dave-${crypto.randomUUID()}`,
  erin: `erin-${crypto.randomUUID()}`
} as const
type User = keyof typeof KEYS

let provider: OAuthCodeServer
let upstream: UserTokenUpstream
let port: number
let origin: string
let stateDir: string
let client: { id: string; secret: string }
/** A client the provider grants no refresh token. */
let noRefreshClient: { id: string; secret: string }
let gateway: RunningGateway

const callbackOf = (id: string) => `${origin}/aperture/auth/${id}/callback`

/** A confidential client registered at the provider for a connector's callback (as an operator registers an OAuth app). */
const registerConnectorApp = async (id: string, grantTypes?: ReadonlyArray<string>) => {
  const app = await registerApp(provider, callbackOf(id), grantTypes === undefined ? {} : { grantTypes })
  return { id: app.id, secret: app.secret! }
}

const config = (secretKey = SECRET_KEY): UserConfig => ({
  server: { port, publicUrl: origin, stateDir },
  secretKey,
  identity: [apiKeys({ keys: Object.fromEntries(Object.entries(KEYS).map(([login, key]) => [key, { login }])) })],
  connectors: {
    gh: mcp({
      url: upstream.url,
      auth: userOAuth({
        clientId: client.id,
        clientSecret: client.secret,
        authorizationUrl: provider.authorizationUrl,
        tokenUrl: provider.tokenUrl,
        scopes: ["openid", "offline_access", "read"]
      })
    }),
    norefresh: mcp({
      url: upstream.url,
      auth: userOAuth({
        clientId: noRefreshClient.id,
        clientSecret: noRefreshClient.secret,
        authorizationUrl: provider.authorizationUrl,
        tokenUrl: provider.tokenUrl,
        scopes: ["openid", "read"]
      })
    })
  },
  grants: [grant({ src: Object.keys(KEYS), connectors: ["**"] })]
})

const api = async (user: User, method: "GET" | "POST", path: string) => {
  const send = () => fetch(`${origin}${path}`, { method, headers: { "x-api-key": KEYS[user] } })
  // After a restart on the same port, the first request may go out on a pooled socket the
  // previous gateway closed: once more on a new one.
  const response = await send().catch(send)
  return { status: response.status, body: await response.json() as any }
}
const connectorOf = async (user: User, id: string) =>
  (await api(user, "GET", "/api/connectors")).body.connectors.find((c: { id: string }) => c.id === id)

/** Runs the flow as `user`: the link from /connect, login and consent at the provider, the callback. */
const connectAs = async (user: User, id: string) => {
  const started = await api(user, "POST", `/api/connectors/${id}/connect`)
  expect(started.status, JSON.stringify(started.body)).toBe(200)
  return finishInBrowser(user, id, started.body.auth_url)
}
const finishInBrowser = async (user: User, id: string, authUrl: string) => {
  const redirect = await authorizeHeadlessly(authUrl, { login: user, redirectUri: callbackOf(id) })
  expect(redirect.code).toBeDefined()
  const landed = await fetch(redirect.url)
  return { status: landed.status, page: await landed.text() }
}

/** What the provider says of a token (RFC 7662). */
const introspect = async (token: string) => {
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString("base64")}`
  const response = await fetch(`${provider.issuer}/token/introspection`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic },
    body: new URLSearchParams({ token })
  })
  return await response.json() as { active: boolean; sub?: string }
}

const mcpClient = async (user: User) => {
  const c = new V2Client({ name: `${user}-client`, version: "1.0.0" })
  await c.connect(new V2Transport(new URL(`${origin}/v1/mcp`), { requestInit: { headers: { "x-api-key": KEYS[user] } } }))
  return c
}
const toolNames = async (user: User) => {
  const c = await mcpClient(user)
  try {
    return (await c.listTools()).tools.map((t) => t.name)
  } finally {
    await c.close()
  }
}
const whoami = async (user: User) => {
  const c = await mcpClient(user)
  try {
    return await c.callTool({ name: "gh_whoami", arguments: {} }) as { content: Array<{ text: string }>; isError?: boolean }
  } finally {
    await c.close()
  }
}

beforeAll(async () => {
  provider = await startOAuthCodeServer()
  upstream = await startUserTokenUpstream({ issuer: provider.issuer, introspector: provider.clients.confidential })
  port = await freePort()
  origin = `http://127.0.0.1:${port}`
  stateDir = mkdtempSync(join(tmpdir(), "aperture-user-oauth-"))
  client = await registerConnectorApp("gh")
  noRefreshClient = await registerConnectorApp("norefresh", ["authorization_code"])
  gateway = await Aperture.start(config())
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await provider?.close()
  rmSync(stateDir, { recursive: true, force: true })
})

describe("a per-user OAuth connector", () => {
  it("is needs_auth with no tools for a user who has not connected (nobody has: the gateway has not tried the upstream)", async () => {
    const gh = await connectorOf("alice", "gh")
    expect(gh).toMatchObject({ status: "needs_auth", auth_type: "oauth2_authorization_code", tools: [] })
    expect(gh.error).toContain("/api/connectors/gh/connect")
    expect(await toolNames("alice")).not.toContain("gh_whoami")
    expect(upstream.callers).toEqual([])
  })

  it("connects through the provider: ready, its tools listed, and the user's calls carry the user's own token", async () => {
    const landed = await connectAs("alice", "gh")
    expect(landed.status).toBe(200)
    expect(landed.page).toContain("Connected gh")
    // The first connection: the gateway now reads the connector's lists with Alice's token.
    const gh = await eventually(async () => {
      const found = await connectorOf("alice", "gh")
      return found.status === "ready" && found
    }, 10_000, "gh ready for alice")
    expect(gh).toMatchObject({ status: "ready", tools: ["gh_whoami"] })
    expect(await toolNames("alice")).toContain("gh_whoami")
    expect((await whoami("alice")).content[0]!.text).toBe("alice")
    // Bob has not connected: he sees nothing of it, and a call is answered with the link.
    expect((await connectorOf("bob", "gh")).status).toBe("needs_auth")
    expect(await toolNames("bob")).not.toContain("gh_whoami")
    const answer = await whoami("bob")
    expect(answer.isError).toBe(true)
    expect(answer.content[0]!.text).toContain("not connected for bob")
    expect(answer.content[0]!.text).toContain(`${provider.authorizationUrl}?`)
    expect(upstream.callers).not.toContain("bob")
  })

  it("keeps each user's token apart: two connected users' calls carry their own (and tells Bob's open session its tools changed)", async () => {
    // Bob holds a 2025-era session while he connects: it hears tools/list_changed, then lists the tool.
    let changed = 0
    const session = new V1Client({ name: "bob-session", version: "1.0.0" })
    session.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++
    })
    await session.connect(new V1Transport(new URL(`${origin}/v1/mcp`), { requestInit: { headers: { "x-api-key": KEYS.bob } } }))
    try {
      expect((await session.listTools()).tools.map((t) => t.name)).not.toContain("gh_whoami")
      await connectAs("bob", "gh")
      await eventually(() => changed > 0, 10_000, "tools/list_changed on Bob's session")
      expect((await session.listTools()).tools.map((t) => t.name)).toContain("gh_whoami")
    } finally {
      await session.close()
    }
    const answers = await Promise.all([whoami("alice"), whoami("bob"), whoami("alice"), whoami("bob")])
    expect(answers.map((a) => a.content[0]!.text)).toEqual(["alice", "bob", "alice", "bob"])
  })

  it("asks a client that takes URL elicitations to connect, and goes on with the call once the user did", async () => {
    const c = new V1Client({ name: "carol-client", version: "1.0.0" }, { capabilities: { elicitation: { url: {} } } })
    const elicited: Array<{ mode?: string; url?: string }> = []
    c.setRequestHandler(ElicitRequestSchema, async (request) => {
      const params = request.params as { mode?: string; url?: string }
      elicited.push(params)
      // The user opens the link in a browser and allows access.
      await finishInBrowser("carol", "gh", params.url!)
      return { action: "accept" }
    })
    await c.connect(new V1Transport(new URL(`${origin}/v1/mcp`), { requestInit: { headers: { "x-api-key": KEYS.carol } } }))
    try {
      const answer = await c.callTool({ name: "gh_whoami", arguments: {} }) as { content: Array<{ text: string }>; isError?: boolean }
      expect(elicited).toHaveLength(1)
      expect(elicited[0]).toMatchObject({ mode: "url", url: expect.stringContaining(`${provider.authorizationUrl}?`) })
      expect(answer.isError, JSON.stringify(answer)).toBeFalsy()
      expect(answer.content[0]!.text).toBe("carol")
    } finally {
      await c.close()
    }
  })

  it("forgets a user's tokens on disconnect, revoked at the provider: needs_auth again, and the call is refused", async () => {
    const bobs: Array<string> = []
    for (const token of provider.issuedTokens) if ((await introspect(token)).sub === "bob") bobs.push(token)
    expect(bobs.length).toBeGreaterThan(0)
    const out = await api("bob", "POST", "/api/connectors/gh/disconnect")
    expect(out).toEqual({ status: 200, body: { status: "needs_auth" } })
    // RFC 7009 at the provider (found in its metadata): the refresh token, and with it the grant, are gone.
    for (const token of bobs) expect((await introspect(token)).active).toBe(false)
    expect((await connectorOf("bob", "gh")).status).toBe("needs_auth")
    expect((await whoami("bob")).isError).toBe(true)
    expect((await whoami("alice")).content[0]!.text).toBe("alice")
  })

  it("is misconfigured, saying why, when the provider grants no refresh token", async () => {
    const landed = await connectAs("erin", "norefresh")
    expect(landed.status).toBe(400)
    expect(landed.page).toContain("no refresh token")
    const norefresh = await connectorOf("erin", "norefresh")
    expect(norefresh).toMatchObject({ status: "misconfigured", tools: [] })
    expect(norefresh.error).toContain("no refresh token")
  })

  it("turns expired when the provider refuses the refresh token: the user is told to connect again (no 500)", async () => {
    provider.accessTokenTtl = 30 // under a minute: every use refreshes ahead of expiry
    try {
      await connectAs("dave", "gh")
      expect((await whoami("dave")).content[0]!.text).toBe("dave")
      // The provider forgets Dave's tokens (as Dave revoking the app there would).
      const basic = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString("base64")}`
      const form = { "content-type": "application/x-www-form-urlencoded", authorization: basic }
      for (const token of [...provider.issuedTokens]) {
        if ((await introspect(token)).sub === "dave") await fetch(provider.revocationUrl, { method: "POST", headers: form, body: new URLSearchParams({ token }) })
      }
      // The call that finds out is answered with the way to reconnect, as the next ones are.
      const finding = await whoami("dave")
      expect(finding.isError).toBe(true)
      expect(finding.content[0]!.text).toContain(`${provider.authorizationUrl}?`)
      const gh = await eventually(async () => {
        const found = await connectorOf("dave", "gh")
        return found.status === "expired" && found
      }, 10_000, "gh expired for dave")
      expect(gh.error).toContain("refresh token")
      const answer = await whoami("dave")
      expect(answer.isError).toBe(true)
      expect(answer.content[0]!.text).toContain(`${provider.authorizationUrl}?`)
      // Connecting again works.
      await connectAs("dave", "gh")
      expect((await connectorOf("dave", "gh")).status).toBe("ready")
    } finally {
      provider.accessTokenTtl = 3600
    }
  })

  it("refuses connect for a connector that is not per-user, and a callback with a forged state", async () => {
    expect((await api("alice", "POST", "/api/connectors/nope/connect")).status).toBe(404)
    const forged = await fetch(`${callbackOf("gh")}?code=x&state=forged`)
    expect(forged.status).toBe(400)
    expect(await forged.text()).toContain("Could not connect gh")
  })

  it("stores tokens encrypted: no token the provider issued is in the state directory", () => {
    const files = readdirSync(stateDir).map((name) => readFileSync(join(stateDir, name)).toString("latin1")).join("\n")
    expect(provider.issuedTokens.length).toBeGreaterThan(0)
    for (const token of provider.issuedTokens) expect(files).not.toContain(token)
  })

  it("keeps the tokens across a restart, and reads them as absent under another secretKey (no crash)", async () => {
    await gateway.close()
    gateway = await Aperture.start(config())
    await eventually(async () => (await connectorOf("alice", "gh")).status === "ready", 10_000, "gh ready after the restart")
    expect((await whoami("alice")).content[0]!.text).toBe("alice")
    await gateway.close()
    gateway = await Aperture.start(config("another secret key, also 32 characters long"))
    expect((await connectorOf("alice", "gh")).status).toBe("needs_auth")
    // Nobody's tokens open: the gateway knows no tools of it (a call is "not found"), and asks nobody's token of the upstream.
    const seen = upstream.callers.length
    const refused = await whoami("alice").catch((error: Error) => ({ isError: true, content: [{ text: error.message }] }))
    expect(refused.isError).toBe(true)
    expect(upstream.callers.length).toBe(seen)
    await gateway.close()
    gateway = await Aperture.start(config())
  })
})
