/**
 * Per-user OAuth in a cluster (issues 20 and 21): two replicas on one real Redis. A user starts
 * the flow on replica A and the provider sends the browser back to replica B (the public origin):
 * B finishes it from the state A kept in Redis, the tokens are stored in Redis (encrypted), and
 * the user's calls on A carry the user's own token; a callback's state is spent for the cluster.
 */
import { createClient } from "redis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Aperture, type RunningGateway } from "../../src/Aperture.js"
import { apiKeys, grant, mcp, redis, userOAuth } from "../../src/index.js"
import { authorizeHeadlessly, type OAuthCodeServer, registerApp, startOAuthCodeServer } from "../fixtures/oauthCodeServer.js"
import { startUserTokenUpstream, type UserTokenUpstream } from "../fixtures/userTokenUpstream.js"
import { connectV2, eventually } from "../helpers/gateway.js"
import { freePort } from "../helpers/processes.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"

const SECRET_KEY = "the per-user cluster test's secret key, 32+ chars"
const ALICE = `alice-${crypto.randomUUID()}`
const PREFIX = "user-oauth-test:"

let store: TestRedis
let provider: OAuthCodeServer
let upstream: UserTokenUpstream
let a: RunningGateway
let b: RunningGateway
let bOrigin: string

beforeAll(async () => {
  ;[store, provider] = await Promise.all([startRedis(), startOAuthCodeServer()])
  upstream = await startUserTokenUpstream({ issuer: provider.issuer, introspector: provider.clients.confidential })
  const [portA, portB] = [await freePort(), await freePort()]
  bOrigin = `http://127.0.0.1:${portB}`
  const registered = await registerApp(provider, `${bOrigin}/aperture/auth/gh/callback`)
  const replica = (port: number) =>
    Aperture.start({
      // Both replicas are reached at B's origin, as behind a balancer.
      server: { port, publicUrl: bOrigin },
      cluster: redis({ url: store.url, keyPrefix: PREFIX }),
      secretKey: SECRET_KEY,
      identity: [apiKeys({ keys: { [ALICE]: { login: "alice" } } })],
      connectors: {
        gh: mcp({
          url: upstream.url,
          auth: userOAuth({
            clientId: registered.id,
            clientSecret: registered.secret!,
            authorizationUrl: provider.authorizationUrl,
            tokenUrl: provider.tokenUrl,
            scopes: ["openid", "offline_access", "read"]
          })
        })
      },
      grants: [grant({ src: ["alice"], connectors: ["**"] })]
    })
  ;[a, b] = await Promise.all([replica(portA), replica(portB)])
}, 60_000)

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()])
  await Promise.all([upstream?.close(), provider?.close(), store?.stop()])
})

describe("a per-user connector on two replicas", () => {
  it("finishes on B a flow started on A, and the user's calls on A carry the user's token", async () => {
    const started = await fetch(`${a.origin}/api/connectors/gh/connect`, { method: "POST", headers: { "x-api-key": ALICE } })
    expect(started.status).toBe(200)
    const { auth_url } = await started.json() as { auth_url: string }
    const redirect = await authorizeHeadlessly(auth_url, { login: "alice", redirectUri: `${bOrigin}/aperture/auth/gh/callback` })
    expect(redirect.url.origin).toBe(bOrigin)
    const landed = await fetch(redirect.url)
    expect(landed.status, await landed.clone().text()).toBe(200)
    // Spent for the whole cluster: the same callback on A is refused.
    const again = await fetch(`${a.origin}${redirect.url.pathname}${redirect.url.search}`)
    expect(again.status).toBe(400)
    expect(await again.text()).toContain("already")

    // The tokens are in Redis, sealed.
    const inspector = createClient({ url: store.url })
    await inspector.connect()
    try {
      const raw = JSON.stringify(await inspector.hGetAll(`${PREFIX}usertokens:gh`))
      expect(raw).toContain("alice")
      for (const token of provider.issuedTokens) expect(raw).not.toContain(token)
    } finally {
      inspector.destroy()
    }

    // A learns of the connection (its lists within a reload), and the call carries Alice's token.
    const client = await connectV2(a.url, { "x-api-key": ALICE })
    try {
      await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "gh_whoami"), 15_000, "gh_whoami listed on A")
      const answer = await client.callTool({ name: "gh_whoami", arguments: {} }) as { content: Array<{ text: string }> }
      expect(answer.content[0]!.text).toBe("alice")
    } finally {
      await client.close()
    }
  }, 60_000)
})
