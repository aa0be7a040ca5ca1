/**
 * Shared client-credentials tokens (issue 20): three gateways with the same connector share one
 * token through a real Redis, so a real token endpoint (oidc-provider, behind a counting front)
 * sees about one request per expiry, not three. Redis holds only ciphertext; a replica with
 * another secretKey still serves (it fetches its own); Redis away → calls still succeed.
 */
import { HttpServer } from "@effect/platform"
import { Effect, Exit, Layer, Logger, LogLevel, Runtime, Scope } from "effect"
import { createClient } from "redis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { clientCredentials } from "../../plugins/auth/clientCredentials.js"
import { Aperture } from "../../src/Aperture.js"
import { grant, mcp, redis } from "../../src/config/dsl.js"
import { connectorsOf, connectV2, eventually } from "../helpers/gateway.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"
import { type CountingTokenFront, startCountingTokenFront } from "../fixtures/countingTokenFront.js"
import { type OAuthServer, startOAuthServer } from "../fixtures/oauthServer.js"
import { type ProtectedUpstream, startProtectedUpstream } from "../fixtures/protectedUpstream.js"

const TOKEN_TTL_SECONDS = 2
/** A 2 s token is refreshed 1.8 s after it was issued (10 % early). */
const REFRESH_MS = TOKEN_TTL_SECONDS * 900
const PREFIX = "test-aperture:"
const SECRET = "the cluster's secret key, 32 characters or more"

let redisServer: TestRedis
let as: OAuthServer
let upstream: ProtectedUpstream
let tokenFront: CountingTokenFront
/** Like the cluster's own client: commands fail at once while Redis is away, and it reconnects quickly. */
const newRedisClient = (url: string) =>
  createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 300) } })
const clients: Array<ReturnType<typeof newRedisClient>> = []
const gateways: Array<Gateway> = []

interface Gateway {
  readonly url: string
  readonly origin: string
  readonly logs: Array<string>
  readonly close: () => Promise<void>
}

const redisClient = async () => {
  const client = newRedisClient(redisServer.url)
  client.on("error", () => {})
  await client.connect()
  clients.push(client)
  return client
}

/** One replica: an in-process gateway given the Redis token store. */
const startReplica = async (secretKey: string = SECRET): Promise<Gateway> => {
  const logs: Array<string> = []
  const scope = Effect.runSync(Scope.make())
  const layer = Aperture.layerOwnServer({
    server: { port: 0 },
    connectors: {
      api: mcp({
        url: upstream.url,
        auth: clientCredentials({
          tokenUrl: tokenFront.tokenUrl,
          clientId: as.clients.basic.id,
          clientSecret: as.clients.basic.secret,
          resource: upstream.url
        })
      })
    },
    grants: [grant({ src: ["local"], connectors: ["**"] })],
    // The real thing: the composition root shares tokens through the cluster's Redis.
    cluster: redis({ url: redisServer.url, keyPrefix: PREFIX }),
    secretKey
  }).pipe(
    Layer.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(String(message))))),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Debug))
  )
  const runtime = await Effect.runPromise(Layer.toRuntime(layer).pipe(Scope.extend(scope)))
  const address = Runtime.runSync(runtime)(HttpServer.HttpServer).address
  const origin = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://unix"
  const gateway: Gateway = { url: `${origin}/v1/mcp`, origin, logs, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
  gateways.push(gateway)
  await eventually(async () => (await connectorsOf(gateway as never)).connectors.every((c) => c.status === "ready"), 15_000, "ready")
  return gateway
}

/** Calls through every replica in turn for `ms`; every call must succeed. */
const callFor = async (replicas: ReadonlyArray<Gateway>, ms: number) => {
  const connected = await Promise.all(replicas.map((r) => connectV2(r.url)))
  try {
    const until = Date.now() + ms
    let n = 0
    while (Date.now() < until) {
      const client = connected[n % connected.length]!
      const result = await client.callTool({ name: "api_echo", arguments: { message: `m${n}` } })
      expect(result).toMatchObject({ content: [{ type: "text", text: `echo: m${n}` }] })
      n++
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return n
  } finally {
    await Promise.all(connected.map((c) => c.close()))
  }
}

/** Every value under the prefix, for leak checks. */
/** Every key under the prefix with its value, read by a client of the test's own. */
const storedValues = async () => {
  const client = clients[0] ?? await redisClient()
  const values: Array<string> = []
  for await (const keys of client.scanIterator({ MATCH: `${PREFIX}*` })) {
    for (const key of keys) {
      const value = await client.get(key)
      if (value !== null) values.push(`${key}=${value}`)
    }
  }
  return values
}

beforeAll(async () => {
  redisServer = await startRedis()
  as = await startOAuthServer({ ttlSeconds: TOKEN_TTL_SECONDS })
  upstream = await startProtectedUpstream({ kind: "oauth", issuer: as.issuer, jwksUrl: as.jwksUrl })
  tokenFront = await startCountingTokenFront(as.tokenUrl)
  for (let i = 0; i < 3; i++) await startReplica()
}, 60_000)

afterAll(async () => {
  for (const gateway of gateways) await gateway.close().catch(() => {})
  for (const client of clients) client.destroy()
  await tokenFront?.close()
  await upstream?.close()
  await as?.close()
  await redisServer?.stop()
})

describe("a clientCredentials token shared by three replicas", () => {
  it("is fetched about once per expiry for the cluster, and every call succeeds", async () => {
    const replicas = gateways.slice(0, 3)
    const before = tokenFront.requests()
    const started = Date.now()
    const calls = await callFor(replicas, 3 * TOKEN_TTL_SECONDS * 1000 + 500)
    const expiries = Math.ceil((Date.now() - started) / REFRESH_MS)
    const requests = tokenFront.requests() - before
    expect(calls).toBeGreaterThan(30)
    expect(requests).toBeGreaterThanOrEqual(expiries - 1)
    expect(requests).toBeLessThanOrEqual(expiries + 1)
    expect(requests).toBeLessThan(3 * expiries)
  }, 30_000)

  it("is stored encrypted: no value in Redis contains an access token", async () => {
    const values = await storedValues()
    expect(values.some((v) => v.startsWith(`${PREFIX}token:api:`))).toBe(true)
    expect(as.issuedTokens.length).toBeGreaterThan(0)
    for (const token of as.issuedTokens) {
      for (const value of values) expect(value).not.toContain(token)
      for (const gateway of gateways) expect(gateway.logs.join("\n")).not.toContain(token)
    }
  })

  it("a replica with another secretKey does not crash: it says so once and serves with its own token", async () => {
    const stranger = await startReplica("another key, also 32 characters or more")
    try {
      expect(await callFor([stranger], 500)).toBeGreaterThan(3)
      await eventually(() => stranger.logs.some((line) => line.includes("does not decrypt with this replica's secretKey")), 5_000, "the warning")
      expect(stranger.logs.filter((line) => line.includes("does not decrypt")).length).toBe(1)
    } finally {
      await stranger.close()
      gateways.splice(gateways.indexOf(stranger), 1)
    }
  }, 30_000)

  it("Redis away: calls still succeed (tokens fetched per replica); Redis back: sharing resumes", async () => {
    const replicas = gateways.slice(0, 3)
    await redisServer.stop()
    expect(await callFor(replicas, 2 * TOKEN_TTL_SECONDS * 1000)).toBeGreaterThan(10)
    expect(replicas.some((r) => r.logs.some((line) => line.includes("shared tokens unavailable")))).toBe(true)
    await redisServer.start()
    await eventually(async () => {
      const health = await Promise.all(replicas.map(async (r) => (await (await fetch(`${r.origin}/healthz`)).json()) as { cluster?: { redis?: string } }))
      return clients.every((c) => c.isReady) && health.every((h) => h.cluster?.redis === "up")
    }, 15_000, "every replica's Redis client reconnected")
    // One expiry to settle, then count.
    await callFor(replicas, REFRESH_MS)
    const before = tokenFront.requests()
    const started = Date.now()
    await callFor(replicas, 2 * TOKEN_TTL_SECONDS * 1000)
    const expiries = Math.ceil((Date.now() - started) / REFRESH_MS)
    const requests = tokenFront.requests() - before
    expect(requests).toBeLessThanOrEqual(expiries + 1)
    expect(requests).toBeLessThan(3 * expiries)
    expect((await storedValues()).some((v) => v.startsWith(`${PREFIX}token:api:`))).toBe(true)
  }, 60_000)
})
