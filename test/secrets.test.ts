/**
 * No secret in any output. Unique secrets are planted in every kind of credential; the gateway
 * is driven through success and every failure path (refused secret, unreachable and redirecting
 * token endpoints, failed discovery, an unusable private key, a 401 on a tool call, an upstream
 * that is down, an upstream whose error pages echo the request's credential, a stdio process
 * printing its env secret to stderr, a JSON-RPC error in an HTTP 200 echoing the credential); then
 * every captured output — log lines at every level, spans with their
 * attributes and errors, `/api/connectors`, errors returned to the caller, `aperture check` —
 * is searched for each secret and for the forms it travels in (Basic, access tokens).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { apiKey } from "../plugins/auth/apiKey.js"
import { basic } from "../plugins/auth/basic.js"
import { bearer } from "../plugins/auth/bearer.js"
import { clientCredentials } from "../plugins/auth/clientCredentials.js"
import { formEncode } from "../src/auth/tokenEndpoint.js"
import { grant, mcp, stdio, userOAuth } from "../src/config/dsl.js"
import { env } from "../src/config/secret.js"
import { startCapturingGateway } from "./helpers/capture.js"
import { connectorsOf, eventually } from "./helpers/gateway.js"
import { freePort, repoRoot, spawnProcess } from "./helpers/processes.js"
import { startJsonRpcErrorEchoer, writeLeakyStdio } from "./fixtures/echoingUpstreams.js"
import { type Front, startFront } from "./fixtures/front.js"
import { authorizeHeadlessly, type OAuthCodeServer, registerApp, startOAuthCodeServer } from "./fixtures/oauthCodeServer.js"
import { type OAuthServer, startOAuthServer } from "./fixtures/oauthServer.js"
import { type ProtectedUpstream, startProtectedUpstream } from "./fixtures/protectedUpstream.js"
import { startUserTokenUpstream, type UserTokenUpstream } from "./fixtures/userTokenUpstream.js"

const plant = (label: string) => `${label}-${crypto.randomUUID()}`
const S = {
  bearer: plant("planted-bearer"),
  refusedBearer: plant("planted-refused-bearer"),
  headerKey: plant("planted-header-key"),
  queryKey: plant("planted-query-key"),
  downQueryKey: plant("planted-down-query-key"),
  password: plant("planted-password"),
  basicSecret: plant("planted-basic-secret"),
  postSecret: plant("planted-post-secret"),
  wrongSecret: plant("planted-wrong-secret"),
  redirectSecret: plant("planted-redirect-secret"),
  downSecret: plant("planted-down-secret"),
  discoverySecret: plant("planted-discovery-secret"),
  badKey: `-----BEGIN PRIVATE KEY-----\n${Buffer.from(plant("planted-bad-key")).toString("base64")}\n-----END PRIVATE KEY-----`,
  caller: plant("planted-caller-token"),
  stdioEnv: plant("planted-stdio-env"),
  echoed200: plant("planted-echoed-200-bearer"),
  secretKey: plant("planted-secret-key-of-32-characters-or-more"),
  userClientSecret: plant("planted-user-client-secret")
}
const stdioEnvName = `APERTURE_TEST_LEAKY_TOKEN_${process.pid}`

let as: OAuthServer
let oauthUpstream: ProtectedUpstream
let staticUpstream: ProtectedUpstream
let redirector: ReturnType<typeof createServer>
/** In front of the static upstream: answers every tool call with an error page that echoes the request's credentials. */
let echoer: Front
/** In front of the static upstream: answers every tool call with HTTP 200 and a JSON-RPC error echoing its Authorization. */
let echoer200: Front
/** Holds the stdio script that prints its env token to stderr and exits. */
let scriptDir: string
let leakyScript: string

beforeAll(async () => {
  as = await startOAuthServer({ basicSecret: S.basicSecret, postSecret: S.postSecret })
  oauthUpstream = await startProtectedUpstream({ kind: "oauth", issuer: as.issuer, jwksUrl: as.jwksUrl })
  staticUpstream = await startProtectedUpstream({
    kind: "static",
    check: (r) =>
      r.headers.get("authorization") === `Bearer ${S.bearer}` ||
      r.headers.get("authorization") === `Bearer ${S.echoed200}` ||
      r.headers.get("x-key") === S.headerKey ||
      new URL(r.url).searchParams.get("key") === S.queryKey ||
      r.headers.get("authorization") === `Basic ${Buffer.from(`svc:${S.password}`).toString("base64")}`
  })
  redirector = createServer((_req, res) => {
    res.writeHead(302, { location: as.tokenUrl })
    res.end()
  })
  await new Promise<void>((resolve) => redirector.listen(0, "127.0.0.1", resolve))
  echoer = await startFront((path) => `${new URL(staticUpstream.url).origin}${path}`, (req, body, res) => {
    // Tool calls, and on `?echo=list` the tools list (which the SDK client sends).
    if (!(body.includes("\"tools/call\"") || (req.url?.includes("echo=list") === true && body.includes("\"tools/list\"")))) return false
    res.writeHead(500, { "content-type": "text/plain" })
    res.end(`cannot serve ${req.url} for authorization=${req.headers["authorization"]} x-key=${req.headers["x-key"]}`)
    return true
  })
  echoer200 = await startJsonRpcErrorEchoer(staticUpstream.url)
  scriptDir = mkdtempSync(join(tmpdir(), "aperture-secrets-stdio-"))
  leakyScript = writeLeakyStdio(scriptDir)
  process.env[stdioEnvName] = S.stdioEnv
})

afterAll(async () => {
  await oauthUpstream?.close()
  await staticUpstream?.close()
  await as?.close()
  redirector?.close()
  await echoer?.close()
  await echoer200?.close()
  delete process.env[stdioEnvName]
  if (scriptDir !== undefined) rmSync(scriptDir, { recursive: true, force: true })
})

/** Every form a secret could leak in. */
const forms = (): Array<string> => [
  ...Object.values(S),
  ...S.badKey.split("\n").filter((l) => !l.startsWith("-----")),
  Buffer.from(`svc:${S.password}`).toString("base64"),
  Buffer.from(`${formEncode(as.clients.basic.id)}:${formEncode(S.basicSecret)}`).toString("base64"),
  as.clients.jwt.privateKeyPem.split("\n").filter((l) => l.length > 20)[0]!,
  ...as.issuedTokens
]

const expectNoSecrets = (what: string, text: string) => {
  for (const secret of forms()) {
    if (text.includes(secret)) throw new Error(`${what} contains a secret (${secret.slice(0, 18)}…):\n${text}`)
  }
}

describe("secrets stay out of every output", () => {
  it("through success and every failure path", async () => {
    const downPort = await freePort()
    const redirectUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/token`
    const echoUrl = echoer.url
    const cc = (options: Partial<Parameters<typeof clientCredentials>[0]>) =>
      clientCredentials({ clientId: as.clients.post.id, clientSecret: S.postSecret, authMethod: "client_secret_post", tokenUrl: as.tokenUrl, resource: oauthUpstream.url, ...options })
    const gateway = await startCapturingGateway({
      connectors: {
        okBearer: mcp({ url: staticUpstream.url, auth: bearer({ secret: S.bearer }) }),
        okHeader: mcp({ url: staticUpstream.url, auth: apiKey({ secret: S.headerKey, name: "X-Key", in: "header" }) }),
        okQuery: mcp({ url: staticUpstream.url, auth: apiKey({ secret: S.queryKey, name: "key", in: "query" }) }),
        okBasic: mcp({ url: staticUpstream.url, auth: basic({ username: "svc", password: S.password }) }),
        okPost: mcp({ url: oauthUpstream.url, auth: cc({}) }),
        okBasicCc: mcp({ url: oauthUpstream.url, auth: cc({ clientId: as.clients.basic.id, clientSecret: S.basicSecret, authMethod: "client_secret_basic" }) }),
        okJwt: mcp({ url: oauthUpstream.url, auth: cc({ clientId: as.clients.jwt.id, authMethod: "private_key_jwt", privateKey: as.clients.jwt.privateKeyPem }) }),
        refused: mcp({ url: staticUpstream.url, auth: bearer({ secret: S.refusedBearer }) }),
        downQuery: mcp({ url: `http://127.0.0.1:${downPort}/mcp`, auth: apiKey({ secret: S.downQueryKey, name: "key", in: "query" }) }),
        wrongSecret: mcp({ url: oauthUpstream.url, auth: cc({ clientSecret: S.wrongSecret }) }),
        wrongBasic: mcp({ url: oauthUpstream.url, auth: cc({ clientId: as.clients.basic.id, clientSecret: S.wrongSecret, authMethod: "client_secret_basic" }) }),
        redirected: mcp({ url: oauthUpstream.url, auth: cc({ clientSecret: S.redirectSecret, tokenUrl: redirectUrl }) }),
        tokenDown: mcp({ url: oauthUpstream.url, auth: cc({ clientSecret: S.downSecret, tokenUrl: `http://127.0.0.1:${downPort}/token` }) }),
        noMetadata: mcp({ url: staticUpstream.url, auth: clientCredentials({ clientId: "x", clientSecret: S.discoverySecret }) }),
        badKey: mcp({ url: oauthUpstream.url, auth: cc({ authMethod: "private_key_jwt", privateKey: S.badKey }) }),
        echoBearer: mcp({ url: echoUrl, auth: bearer({ secret: S.bearer }) }),
        echoQuery: mcp({ url: echoUrl, auth: apiKey({ secret: S.queryKey, name: "key", in: "query" }) }),
        echoHeader: mcp({ url: echoUrl, auth: apiKey({ secret: S.headerKey, name: "X-Key", in: "header" }) }),
        echoList: mcp({ url: `${echoUrl}?echo=list`, auth: bearer({ secret: S.bearer }) }),
        // Prints its env secret to stderr and exits; and a JSON-RPC error in an HTTP 200 echoing the credential.
        leakyStdio: stdio({ command: process.execPath, args: [leakyScript], env: { TOKEN: env(stdioEnvName) }, isolation: "shared" }),
        echo200: mcp({ url: echoer200.url, auth: bearer({ secret: S.echoed200 }) })
      },
      grants: [grant({ src: ["local"], connectors: ["**"] })]
    })
    try {
      await eventually(async () => {
        const { connectors } = await connectorsOf(gateway)
        // The stdio process's error holds its stderr once it has exited.
        return connectors.every((c) => c.status !== "connecting") &&
          connectors.find((c) => c.id === "leakyStdio")?.error?.includes("stderr") === true
      }, 45_000, "every first attempt")
      const api = await connectorsOf(gateway)
      const status = Object.fromEntries(api.connectors.map((c) => [c.id, c.status]))
      expect(status).toEqual({
        okBearer: "ready",
        okHeader: "ready",
        okQuery: "ready",
        okBasic: "ready",
        okPost: "ready",
        okBasicCc: "ready",
        okJwt: "ready",
        refused: "misconfigured",
        downQuery: "down",
        wrongSecret: "misconfigured",
        wrongBasic: "misconfigured",
        redirected: "misconfigured",
        tokenDown: "misconfigured",
        noMetadata: "misconfigured",
        badKey: "misconfigured",
        echoBearer: "ready",
        echoQuery: "ready",
        echoHeader: "ready",
        echoList: "down",
        leakyStdio: "down",
        echo200: "ready"
      })
      // The stderr is told, with the secret taken out.
      expect(api.connectors.find((c) => c.id === "leakyStdio")?.error).toContain("starting with token <redacted>")

      const client = new Client({ name: "caller", version: "1" }, { versionNegotiation: { mode: "auto" } })
      await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url), {
        requestInit: { headers: { authorization: `Bearer ${S.caller}` } }
      }))
      const answers: Array<string> = []
      for (const id of ["okBearer", "okHeader", "okQuery", "okBasic", "okPost", "okBasicCc", "okJwt"]) {
        answers.push(JSON.stringify(await client.callTool({ name: `${id}_echo`, arguments: { message: "hi" } })))
      }
      // A 401 on a tool call, and calls to connectors that are not serving.
      oauthUpstream.revokeIssuedTokens()
      // An upstream error page that echoes what it was sent.
      for (
        const name of ["okPost_count", "refused_echo", "wrongSecret_echo", "echoBearer_echo", "echoQuery_echo", "echoHeader_echo", "leakyStdio_echo", "echo200_echo"]
      ) {
        answers.push(await client.callTool({ name, arguments: {} }).then(JSON.stringify, (e: Error) => e.message))
      }
      answers.push(await client.readResource({ uri: "okJwt-fixture://status" }).then(JSON.stringify, (e: Error) => e.message))
      await client.close()

      // Several retries of each failure have been logged by now.
      await new Promise((r) => setTimeout(r, 3_000))
      const finalApi = JSON.stringify(await connectorsOf(gateway))
      // The tool call whose token was revoked went through on the retry, with a fresh one.
      expect(JSON.parse(answers[7]!)).toMatchObject({ content: [{ type: "text", text: expect.stringMatching(/^\d+$/) }] })
      // The echo reached the caller, without the credential in it.
      expect(answers.join("\n")).toMatch(/authorization=<redacted>.*\n.*mcp\?key=<redacted>.*\n.*x-key=<redacted>/)
      // The JSON-RPC error in an HTTP 200 reached the caller, without the credential it echoed.
      expect(answers.at(-2)).toContain("you sent authorization=<redacted>")
      expectNoSecrets("answers to the caller", answers.join("\n"))
      expectNoSecrets("/api/connectors", finalApi)
      expectNoSecrets("logs", gateway.captured.logs.join("\n"))
      expectNoSecrets("spans", gateway.captured.spans.join("\n"))
      // The failures were said, just without secrets.
      const logs = gateway.captured.logs.join("\n")
      // The stdio process's stderr was logged, scrubbed.
      expect(logs).toContain("starting with token <redacted>")
      for (const id of ["refused", "wrongSecret", "redirected", "tokenDown", "noMetadata", "badKey"]) {
        expect(logs).toContain(`connector ${id} misconfigured`)
      }
      // The caller's own token never travelled on.
      const upstreamSaw = JSON.stringify([...staticUpstream.requests, ...oauthUpstream.requests])
      expect(upstreamSaw).toContain(S.bearer)
      expect(upstreamSaw).toContain(S.echoed200)
      expect(upstreamSaw).not.toContain(S.caller)
    } finally {
      await gateway.close()
    }
  })

  /**
   * A per-user connector driven through connect, a replayed callback, calls that refresh, then
   * (with `echoRefusals`) a provider refusing the refresh and the next code exchange with an
   * error_description echoing what it was sent, a disconnect, /api/connectors and /metrics.
   * Returns everything said, and every per-user secret that travelled.
   */
  const perUserRun = async (options: { readonly echoRefusals: boolean }) => {
    const provider: OAuthCodeServer = await startOAuthCodeServer()
    const upstream: UserTokenUpstream = await startUserTokenUpstream({ issuer: provider.issuer, introspector: provider.clients.confidential })
    // The redirect URIs name this origin; the browser's part lands them on the test gateway's real one.
    const publicUrl = "http://aperture.test"
    const redirectUri = `${publicUrl}/aperture/auth/perUser/callback`
    const app = await registerApp(provider, redirectUri)
    const registered = { client_id: app.id, client_secret: app.secret! }
    /** What went to the token endpoint: codes, verifiers, refresh tokens, the client's Basic credentials. */
    const sent: Array<string> = []
    /** Set: the token endpoint refuses with an error_description echoing what it was sent (as careless providers do). */
    let echoRefusals = false
    const tokenFront = await startFront((path) => `${provider.issuer}${path}`, (req, body, res) => {
      if (req.url !== "/token") return false
      const form = new URLSearchParams(body)
      for (const name of ["code", "code_verifier", "refresh_token"]) {
        const value = form.get(name)
        if (value !== null) sent.push(value)
      }
      const authorization = req.headers["authorization"]
      if (authorization !== undefined) sent.push(authorization.replace(/^Basic /, ""))
      if (!echoRefusals) return false
      res.writeHead(400, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: "invalid_grant", error_description: `refused ${body} from ${authorization}` }))
      return true
    })
    const stateDir = mkdtempSync(join(tmpdir(), "aperture-secrets-user-"))
    // Access tokens inside the refresh margin: every call refreshes, so refresh tokens travel too.
    provider.accessTokenTtl = 30
    const gateway = await startCapturingGateway({
      server: { publicUrl, stateDir },
      secretKey: S.secretKey,
      connectors: {
        perUser: mcp({
          url: upstream.url,
          auth: userOAuth({
            clientId: registered.client_id,
            clientSecret: registered.client_secret,
            authorizationUrl: provider.authorizationUrl,
            tokenUrl: tokenFront.url.replace(/\/mcp$/, "/token"),
            scopes: ["openid", "offline_access", "read"]
          })
        })
      },
      grants: [grant({ src: ["local"], connectors: ["**"], role: "admin" })]
    })
    const codes: Array<string> = []
    const outputs: Array<string> = []
    const post = (path: string) => fetch(`${gateway.origin}${path}`, { method: "POST" }).then((r) => r.text())
    /** Login and consent at the provider, then the callback on the gateway: the page it shows. */
    const browse = async (authUrl: string) => {
      const redirect = await authorizeHeadlessly(authUrl, { login: "local", redirectUri })
      codes.push(redirect.code!)
      const landed = `${gateway.origin}${redirect.url.pathname}${redirect.url.search}`
      return { landed, page: await fetch(landed).then((r) => r.text()) }
    }
    const call = async () => {
      const client = new Client({ name: "caller", version: "1" })
      await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
      try {
        return await client.callTool({ name: "perUser_whoami", arguments: {} }).then(JSON.stringify, (e: Error) => e.message)
      } finally {
        await client.close()
      }
    }
    try {
      const started = await post("/api/connectors/perUser/connect")
      outputs.push(started)
      const first = await browse(JSON.parse(started).auth_url)
      expect(first.page).toContain("Connected perUser")
      outputs.push(first.page)
      // The same callback again: its state is spent, its code used.
      outputs.push(await fetch(first.landed).then((r) => r.text()))
      await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "perUser")?.status === "ready", 10_000, "perUser ready")
      for (let i = 0; i < 3; i++) outputs.push(await call())
      expect(outputs.at(-1)).toContain("\"text\":\"local\"")
      if (options.echoRefusals) {
        // A provider refusing the refresh and echoing it: the user is expired, and told so.
        echoRefusals = true
        outputs.push(await call())
        const expired = await connectorsOf(gateway)
        expect(expired.connectors.find((c) => c.id === "perUser")?.status).toBe("expired")
        // Connecting again, the code exchange refused the same way.
        const again = await post("/api/connectors/perUser/connect")
        outputs.push(again, (await browse(JSON.parse(again).auth_url)).page)
        expect(codes).toHaveLength(2)
      }
      outputs.push(await post("/api/connectors/perUser/disconnect"))
      outputs.push(JSON.stringify(await connectorsOf(gateway)))
      outputs.push(await fetch(`${gateway.origin}/metrics`).then((r) => r.text()))
      expect(outputs.at(-1)).toMatch(/^# (HELP|TYPE)/m)

      expect(sent.length).toBeGreaterThan(5)
      expect(provider.issuedTokens.length).toBeGreaterThan(3)
      return {
        said: [
          [ANSWERS, outputs.join("\n")],
          ["logs", gateway.captured.logs.join("\n")],
          ["spans", gateway.captured.spans.join("\n")]
        ] as const,
        secrets: [...codes, ...sent, ...provider.issuedTokens, registered.client_secret, S.secretKey]
      }
    } finally {
      await gateway.close()
      await tokenFront.close()
      await upstream.close()
      await provider.close()
      rmSync(stateDir, { recursive: true, force: true })
    }
  }
  const expectNoUserSecrets = (run: Awaited<ReturnType<typeof perUserRun>>, outputs: ReadonlyArray<string>) => {
    for (const [what, text] of run.said.filter(([what]) => outputs.includes(what))) {
      for (const secret of run.secrets) {
        if (text.includes(secret)) throw new Error(`${what}: a per-user secret (${secret.slice(0, 12)}…) in:\n${text}`)
      }
    }
  }
  const ANSWERS = "answers, pages, /api/connectors and /metrics"

  it("a per-user connector: no authorization code, PKCE verifier, client secret, access or refresh token in answers, pages, /api/connectors, /metrics or logs", async () => {
    const run = await perUserRun({ echoRefusals: false })
    expectNoUserSecrets(run, [ANSWERS, "logs"])
    // The replayed callback was refused, and said so.
    expect(run.said[0][1]).toContain("Could not connect perUser")
  })

  // The callback's query holds the authorization code (and state): it gets no http.server span.
  it("a per-user connector: no authorization code in spans", async () => {
    expectNoUserSecrets(await perUserRun({ echoRefusals: false }), ["spans"])
  })

  // A token endpoint's error_description that echoes the request (the refresh token, the code,
  // the verifier, the client's Basic credentials) is scrubbed before it reaches anyone.
  it("a per-user connector: a provider's refusal echoing the refresh token, code, verifier or client secret is not repeated", async () => {
    expectNoUserSecrets(await perUserRun({ echoRefusals: true }), [ANSWERS, "logs"])
  })

  it("aperture check prints no secret, inline or from the environment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aperture-secrets-"))
    const config = join(dir, "aperture.json")
    writeFileSync(config, JSON.stringify({
      connectors: {
        servers: {
          a: { protocol: "mcp", url: "https://a.example.com/mcp", auth: { type: "bearer_token", secret: S.bearer } },
          b: { protocol: "mcp", url: "https://b.example.com/mcp", auth: { type: "api_key", secret: { env: "APERTURE_TEST_KEY" }, name: "key", in: "query" } },
          c: { protocol: "mcp", url: "https://c.example.com/mcp", auth: { type: "basic", username: "svc", password: S.password } },
          d: {
            protocol: "mcp",
            url: "https://d.example.com/mcp",
            auth: { type: "oauth2_client_credentials", client_id: "id", client_secret: { env: "APERTURE_TEST_SECRET" }, token_url: "https://auth.example.com/token", scopes: ["r"] }
          },
          e: { protocol: "mcp", url: "https://e.example.com/mcp", auth: { type: "oauth2_client_credentials", client_id: "id", auth_method: "private_key_jwt", private_key: S.badKey } },
          f: {
            protocol: "mcp",
            url: "https://f.example.com/mcp",
            auth: {
              type: "oauth2_authorization_code",
              client_id: "per-user-app",
              client_secret: S.userClientSecret,
              auth_url: "https://auth.example.com/authorize",
              token_url: "https://auth.example.com/token"
            }
          },
          g: { protocol: "mcp", url: "https://g.example.com/mcp", auth: { type: "oauth2_dcr" } }
        }
      },
      secret_key: S.secretKey,
      server: { stateDir: join(dir, "state") },
      grants: [{ src: ["*"], app: { "tailscale.com/cap/aperture": [{ connectors: ["**"] }] } }]
    }))
    const child = spawnProcess(process.execPath, [join(repoRoot, "bin/aperture.js"), "check", "--config", config], {
      APERTURE_TEST_KEY: S.queryKey,
      APERTURE_TEST_SECRET: S.postSecret
    })
    const code = await new Promise<number | null>((resolve) => child.child.on("exit", resolve))
    rmSync(dir, { recursive: true, force: true })
    expect(code).toBe(0)
    expect(child.output()).toContain("auth: clientCredentials (client id, client_secret_basic, token endpoint https://auth.example.com/token")
    expect(child.output()).toContain("per-user OAuth (authorization code + PKCE) client per-user-app at auth.example.com")
    expectNoSecrets("aperture check", child.output())
  })
})
