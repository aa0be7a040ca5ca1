/**
 * Per-user OAuth with dynamic client registration (issue 21), against the real oidc-provider of
 * `oauthCodeServer.ts` and the introspecting upstream of `userTokenUpstream.ts`:
 *
 * - `userOAuth.dynamic()`: the gateway finds the provider from the upstream's protected resource
 *   metadata (RFC 9728 → RFC 8414), registers one client (RFC 7591) on the first connect and keeps
 *   it: a second user, and a restart on the same stateDir, use the same client. The provider
 *   assigns a fresh random client_id at every registration, so the client_id each authorization
 *   link carries tells how many registrations there were.
 * - a public client (no secret; PKCE only) works: its token requests carry a code_verifier and
 *   no client credentials;
 * - the original's JSON (`oauth2_dcr`, `oauth2_authorization_code`) loads from a file and works.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { builtInPlugins } from "../plugins/builtIns.js"
import { Aperture, type RunningGateway } from "../src/Aperture.js"
import type { UserConfig } from "../src/config/dsl.js"
import { loadConfigFile } from "../src/config/load.js"
import { apiKeys, grant, mcp, userOAuth } from "../src/index.js"
import { type Front, startFront } from "./fixtures/front.js"
import { authorizeHeadlessly, type OAuthCodeServer, registerApp, startOAuthCodeServer } from "./fixtures/oauthCodeServer.js"
import { startUserTokenUpstream, type UserTokenUpstream } from "./fixtures/userTokenUpstream.js"
import { eventually } from "./helpers/gateway.js"
import { freePort } from "./helpers/processes.js"

const SECRET_KEY = "the dynamic registration test's secret key, 32 characters or more"
const KEYS = { alice: `alice-${crypto.randomUUID()}`, bob: `bob-${crypto.randomUUID()}`, carol: `carol-${crypto.randomUUID()}` } as const
type User = keyof typeof KEYS | "local"
const SCOPES = ["openid", "offline_access", "read"]

let provider: OAuthCodeServer
let upstream: UserTokenUpstream
/** In front of the provider's token endpoint, for the public client: what each token request sent. */
let tokenFront: Front
const tokenRequests: Array<{ authorization: string | undefined; form: URLSearchParams }> = []
let publicClientId: string
const dirs: Array<string> = []
let gateway: RunningGateway | undefined

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "aperture-user-oauth-dcr-"))
  dirs.push(dir)
  return dir
}

/** Registers a client at the provider as an operator would (for the static connectors). */
const registerStaticApp = (redirectUri: string, method: "none" | "client_secret_basic") =>
  registerApp(provider, redirectUri, { public: method === "none" })

/** A gateway's view for one user: its HTTP API, the connect flow, and its MCP endpoint. */
const as = (origin: string, user: User) => {
  const headers: Record<string, string> = user === "local" ? {} : { "x-api-key": KEYS[user] }
  const api = async (method: "GET" | "POST", path: string) => {
    const send = () => fetch(`${origin}${path}`, { method, headers })
    // After a restart on the same port a pooled socket may be the old gateway's: once more.
    const response = await send().catch(send)
    return { status: response.status, body: await response.json() as any }
  }
  const connectorOf = async (id: string) => (await api("GET", "/api/connectors")).body.connectors.find((c: { id: string }) => c.id === id)
  const login = user === "local" ? "local" : user
  return {
    api,
    connectorOf,
    /** POST /connect: the authorization link. */
    start: async (id: string): Promise<string> => {
      const started = await api("POST", `/api/connectors/${id}/connect`)
      expect(started.status, JSON.stringify(started.body)).toBe(200)
      return started.body.auth_url
    },
    /** Login and consent at the provider, then the gateway's callback, as the browser would. */
    finish: async (id: string, authUrl: string) => {
      const redirect = await authorizeHeadlessly(authUrl, { login, redirectUri: `${origin}/aperture/auth/${id}/callback` })
      expect(redirect.code, redirect.url.href).toBeDefined()
      const landed = await fetch(redirect.url)
      const page = await landed.text()
      expect(landed.status, page).toBe(200)
      expect(page).toContain(`Connected ${id}`)
      await eventually(async () => (await connectorOf(id))?.status === "ready", 10_000, `${id} ready for ${login}`)
    },
    whoami: async (id: string) => {
      const c = new Client({ name: `${login}-client`, version: "1.0.0" })
      await c.connect(new StreamableHTTPClientTransport(new URL(`${origin}/v1/mcp`), { requestInit: { headers } }))
      try {
        const answer = await c.callTool({ name: `${id}_whoami`, arguments: {} }) as { content: Array<{ text: string }>; isError?: boolean }
        expect(answer.isError, JSON.stringify(answer)).toBeFalsy()
        return answer.content[0]!.text
      } finally {
        await c.close()
      }
    }
  }
}
const clientIdOf = (authUrl: string) => new URL(authUrl).searchParams.get("client_id")

beforeAll(async () => {
  provider = await startOAuthCodeServer()
  upstream = await startUserTokenUpstream({ issuer: provider.issuer, introspector: provider.clients.confidential })
  tokenFront = await startFront((path) => `${provider.issuer}${path}`, (req, body) => {
    if (req.url === "/token") tokenRequests.push({ authorization: req.headers["authorization"], form: new URLSearchParams(body) })
    return false
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await tokenFront?.close()
  await upstream?.close()
  await provider?.close()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("a dynamic per-user connector (userOAuth.dynamic)", () => {
  let port: number
  let origin: string
  let stateDir: string
  let config: () => UserConfig
  let registered: string | null

  beforeAll(async () => {
    port = await freePort()
    origin = `http://127.0.0.1:${port}`
    stateDir = tempDir()
    const pub = await registerStaticApp(`${origin}/aperture/auth/pub/callback`, "none")
    expect(pub.secret).toBeUndefined()
    publicClientId = pub.id
    config = () => ({
      server: { port, publicUrl: origin, stateDir },
      secretKey: SECRET_KEY,
      identity: [apiKeys({ keys: Object.fromEntries(Object.entries(KEYS).map(([login, key]) => [key, { login }])) })],
      connectors: {
        dyn: mcp({ url: upstream.url, auth: userOAuth.dynamic({ scopes: SCOPES }) }),
        // The same upstream, also registered on first use (for the concurrent first connects).
        race: mcp({ url: upstream.url, auth: userOAuth.dynamic({ scopes: SCOPES }) }),
        // An upstream where no authorization server can be found (nothing listens there).
        lost: mcp({ url: "http://127.0.0.1:9/mcp", auth: userOAuth.dynamic() }),
        // A public client: no secret, PKCE only; its token requests go through the front.
        pub: mcp({
          url: upstream.url,
          auth: userOAuth({ clientId: publicClientId, authorizationUrl: provider.authorizationUrl, tokenUrl: tokenFront.url.replace(/\/mcp$/, "/token"), scopes: SCOPES })
        })
      },
      grants: [grant({ src: ["alice", "bob", "carol"], connectors: ["**"] })]
    })
    gateway = await Aperture.start(config())
  }, 30_000)

  it("is needs_auth (oauth2_dcr) and has registered nothing before anyone connects", async () => {
    const dyn = await as(origin, "alice").connectorOf("dyn")
    expect(dyn).toMatchObject({ status: "needs_auth", auth_type: "oauth2_dcr", tools: [] })
    expect(upstream.callers).toEqual([])
  })

  it("discovers the provider and registers a client on the first connect; the user's calls carry their own token", async () => {
    const alice = as(origin, "alice")
    const authUrl = await alice.start("dyn")
    // Discovered from the upstream's metadata: the provider's authorization endpoint, PKCE S256.
    expect(authUrl.startsWith(`${provider.authorizationUrl}?`)).toBe(true)
    const params = new URL(authUrl).searchParams
    expect(params.get("code_challenge_method")).toBe("S256")
    expect(params.get("redirect_uri")).toBe(`${origin}/aperture/auth/dyn/callback`)
    registered = clientIdOf(authUrl)
    expect(registered).toBeTruthy()
    // Not one of the provider's static clients: registered just now.
    expect(Object.values(provider.clients).map((c) => c.id)).not.toContain(registered)
    await alice.finish("dyn", authUrl)
    expect(await alice.whoami("dyn")).toBe("alice")
  })

  it("keeps the registration: a second user connects with the same client, and each user's calls carry their own token", async () => {
    const bob = as(origin, "bob")
    const authUrl = await bob.start("dyn")
    expect(clientIdOf(authUrl)).toBe(registered)
    await bob.finish("dyn", authUrl)
    const alice = as(origin, "alice")
    const answers = await Promise.all([alice.whoami("dyn"), bob.whoami("dyn"), alice.whoami("dyn"), bob.whoami("dyn")])
    expect(answers).toEqual(["alice", "bob", "alice", "bob"])
  })

  it("keeps the registration across a restart on the same stateDir (and the users' tokens)", async () => {
    await gateway!.close()
    gateway = await Aperture.start(config())
    await eventually(async () => (await as(origin, "alice").connectorOf("dyn"))?.status === "ready", 10_000, "dyn ready after the restart")
    expect(await as(origin, "bob").whoami("dyn")).toBe("bob")
    const carol = as(origin, "carol")
    const authUrl = await carol.start("dyn")
    expect(clientIdOf(authUrl)).toBe(registered)
    await carol.finish("dyn", authUrl)
    expect(await carol.whoami("dyn")).toBe("carol")
  })

  // Two first connects at once: one discovery and one registration for the connector, so both
  // users' flows use the same client.
  it("registers once when two users connect for the first time at once, and both connections work", async () => {
    const [alice, bob] = [as(origin, "alice"), as(origin, "bob")]
    const [aliceUrl, bobUrl] = await Promise.all([alice.start("race"), bob.start("race")])
    expect(clientIdOf(aliceUrl)).toBe(clientIdOf(bobUrl))
    await alice.finish("race", aliceUrl)
    await bob.finish("race", bobUrl)
    expect(await Promise.all([alice.whoami("race"), bob.whoami("race")])).toEqual(["alice", "bob"])
  })

  it("is misconfigured for the user, with the reason, when no authorization server can be discovered", async () => {
    const alice = as(origin, "alice")
    const refused = await alice.api("POST", "/api/connectors/lost/connect")
    expect(refused.status).toBe(409)
    expect(refused.body).toMatchObject({ status: "misconfigured", error: expect.stringContaining("connector lost") })
    const lost = await alice.connectorOf("lost")
    expect(lost).toMatchObject({ status: "misconfigured", auth_type: "oauth2_dcr", tools: [] })
    expect(lost.error).toContain("discovery")
  })

  it("works with a public client: PKCE only, no client credentials on the token request", async () => {
    const alice = as(origin, "alice")
    const authUrl = await alice.start("pub")
    expect(clientIdOf(authUrl)).toBe(publicClientId)
    await alice.finish("pub", authUrl)
    expect(await alice.whoami("pub")).toBe("alice")
    const exchange = tokenRequests.find((r) => r.form.get("grant_type") === "authorization_code")
    expect(exchange).toBeDefined()
    expect(exchange!.authorization).toBeUndefined()
    expect(exchange!.form.get("client_secret")).toBeNull()
    expect(exchange!.form.get("client_id")).toBe(publicClientId)
    expect(exchange!.form.get("code_verifier")).toMatch(/^[A-Za-z0-9._~-]{43,128}$/)
  })
})

describe("the original's JSON per-user connectors, loaded from a file", () => {
  it("oauth2_dcr and oauth2_authorization_code load, connect and carry the user's token", async () => {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const dir = tempDir()
    const app = await registerStaticApp(`${origin}/aperture/auth/code/callback`, "client_secret_basic")
    const file = join(dir, "aperture.json")
    writeFileSync(file, JSON.stringify({
      server: { port, publicUrl: origin },
      secret_key: SECRET_KEY,
      connectors: {
        servers: {
          dcr: { protocol: "mcp", url: upstream.url, auth: { type: "oauth2_dcr", scopes: SCOPES.join(" ") } },
          code: {
            protocol: "mcp",
            url: upstream.url,
            auth: {
              type: "oauth2_authorization_code",
              client_id: app.id,
              client_secret: app.secret,
              auth_url: provider.authorizationUrl,
              token_url: provider.tokenUrl,
              scopes: SCOPES
            }
          }
        }
      },
      grants: [{ src: ["*"], app: { "tailscale.com/cap/aperture": [{ connectors: ["**"] }] } }]
    }))
    const config = await Effect.runPromise(loadConfigFile(file, builtInPlugins))
    const json = await Aperture.start(config)
    try {
      // The default identity: this machine's caller is "local".
      const local = as(origin, "local")
      expect((await local.connectorOf("dcr"))).toMatchObject({ status: "needs_auth", auth_type: "oauth2_dcr" })
      expect((await local.connectorOf("code"))).toMatchObject({ status: "needs_auth", auth_type: "oauth2_authorization_code" })
      const dcrUrl = await local.start("dcr")
      expect(clientIdOf(dcrUrl)).not.toBe(app.id)
      await local.finish("dcr", dcrUrl)
      const codeUrl = await local.start("code")
      expect(clientIdOf(codeUrl)).toBe(app.id)
      await local.finish("code", codeUrl)
      expect(await local.whoami("dcr")).toBe("local")
      expect(await local.whoami("code")).toBe("local")
    } finally {
      await json.close()
    }
    // The state directory defaults to .aperture beside the config file.
    expect(existsSync(join(dir, ".aperture"))).toBe(true)
  })
})
