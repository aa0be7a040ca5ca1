/**
 * The cluster foundation against a real Redis (Debian's redis-server): the config and what
 * `aperture check` shows of it (never the password), a start that fails clearly when Redis is
 * unreachable, and a running gateway that reports Redis down as degraded, keeps serving
 * 2026-era calls meanwhile, and recovers by itself when Redis returns.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { decodeApertureJson, decodeConfig } from "../../src/Aperture.js"
import { grant, mcp, redis } from "../../src/config/dsl.js"
import { env } from "../../src/config/secret.js"
import { startV2Upstream, type V2Upstream } from "../fixtures/v2Upstream.js"
import { connectV2, eventually, startGateway } from "../helpers/gateway.js"
import { freePort, repoRoot, spawnProcess } from "../helpers/processes.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"

const bin = join(repoRoot, "bin/aperture.js")
const dir = mkdtempSync(join(tmpdir(), "aperture-cluster-"))
const SECRET_KEY = "k".repeat(32)
const PASSWORD = "pw-3c9e41d07a"

const run = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const started = Date.now()
  const child = spawnProcess(process.execPath, [bin, ...args], env, repoRoot)
  const code = await new Promise<number | null>((resolve) => child.child.on("exit", (c) => resolve(c)))
  return { code, output: child.output(), ms: Date.now() - started }
}

const configFile = (name: string, cluster: string) => {
  const path = join(dir, name)
  writeFileSync(path, `
    import { defineConfig, redis, env } from "aperture"
    export default defineConfig({
      cluster: ${cluster},
      secretKey: env("APERTURE_SECRET_KEY"),
    })`)
  return path
}

const issuesOf = async (input: unknown) => {
  const decoded = await Effect.runPromise(Effect.either(decodeConfig(input)))
  if (Either.isRight(decoded)) throw new Error("expected the config to be invalid")
  return decoded.left.issues
}

let store: TestRedis
let fx: V2Upstream
beforeAll(async () => {
  ;[store, fx] = await Promise.all([startRedis(), startV2Upstream({ name: "fx" })])
})
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await Promise.all([store?.stop(), fx?.close()])
})

describe("cluster config", () => {
  it("decodes redis({ url }) with the default key prefix, the URL held redacted", async () => {
    const config = await Effect.runPromise(decodeConfig({
      cluster: redis({ url: `redis://:${PASSWORD}@127.0.0.1:6390/2` }),
      secretKey: SECRET_KEY
    }))
    expect(config.cluster).toMatchObject({ kind: "redis", host: "127.0.0.1", port: 6390, keyPrefix: "aperture:" })
    expect(JSON.stringify(config.cluster)).not.toContain(PASSWORD)
    expect(String(config.secretKey)).not.toContain(SECRET_KEY)
    const none = await Effect.runPromise(decodeConfig({}))
    expect(none.cluster).toBeUndefined()
    expect(none.secretKey).toBeUndefined()
  })

  it("requires secretKey with cluster, at least 32 characters, and a redis:// or rediss:// URL", async () => {
    expect(await issuesOf({ cluster: redis({ url: "redis://127.0.0.1" }) })).toEqual([{
      path: "secretKey",
      message: expect.stringContaining("shared tokens are kept in Redis encrypted; set secretKey: env(\"APERTURE_SECRET_KEY\")")
    }])
    expect(await issuesOf({ cluster: redis({ url: "redis://127.0.0.1" }), secretKey: "short" })).toEqual([{
      path: "secretKey",
      message: expect.stringContaining("at least 32 characters")
    }])
    const scheme = await issuesOf({ cluster: redis({ url: `http://u:${PASSWORD}@127.0.0.1` }), secretKey: SECRET_KEY })
    expect(scheme).toEqual([{ path: "cluster.url", message: expect.stringMatching(/unsupported scheme "http"; expected redis or rediss/) }])
    expect(JSON.stringify(scheme)).not.toContain(PASSWORD)
    const garbled = await issuesOf({ cluster: redis({ url: `not a url ${PASSWORD}` }), secretKey: SECRET_KEY })
    expect(garbled[0]?.path).toBe("cluster.url")
    expect(JSON.stringify(garbled)).not.toContain(PASSWORD)
  })

  it("rejects unknown fields under redis, and a cluster not made with redis()", async () => {
    expect(await issuesOf({ cluster: { ...redis({ url: "redis://h" }), keyprefix: "x:" }, secretKey: SECRET_KEY })).toEqual([{
      path: "cluster.keyprefix",
      message: expect.stringMatching(/^unexpected field/)
    }])
    expect(await issuesOf({ cluster: { url: "redis://h" }, secretKey: SECRET_KEY })).toEqual([{
      path: "cluster",
      message: "expected a cluster made with redis({ url })"
    }])
    expect(await issuesOf({ cluster: redis({ url: env("APERTURE_TEST_UNSET_REDIS_URL") }), secretKey: SECRET_KEY })).toEqual([{
      path: "cluster.url",
      message: "environment variable APERTURE_TEST_UNSET_REDIS_URL is not set"
    }])
  })
})

const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

const jsonIssuesOf = async (value: unknown, vars: Record<string, string> = {}) => {
  const decoded = await Effect.runPromise(Effect.either(decodeApertureJson(value, "aperture.json").pipe(withEnv(vars))))
  if (Either.isRight(decoded)) throw new Error("expected the JSON config to be invalid")
  return decoded.left.issues
}

describe("cluster in the original's JSON shape", () => {
  it("decodes to the same cluster and key as redis({ url, keyPrefix }) and secretKey, secrets from { env }", async () => {
    const url = `redis://:${PASSWORD}@10.0.0.7:6391/3`
    const vars = { REDIS_URL: url, APERTURE_SECRET_KEY: SECRET_KEY }
    const fromJson = await Effect.runPromise(decodeApertureJson({
      cluster: { redis: { url: { env: "REDIS_URL" }, key_prefix: "team-a:" } },
      secret_key: { env: "APERTURE_SECRET_KEY" }
    }, "aperture.json").pipe(withEnv(vars)))
    const fromDsl = await Effect.runPromise(decodeConfig({
      cluster: redis({ url: env("REDIS_URL"), keyPrefix: "team-a:" }),
      secretKey: env("APERTURE_SECRET_KEY")
    }).pipe(withEnv(vars)))
    const plainly = (config: typeof fromJson) => ({
      cluster: config.cluster && { ...config.cluster, url: Redacted.value(config.cluster.url) },
      secretKey: config.secretKey && Redacted.value(config.secretKey)
    })
    expect(plainly(fromJson)).toEqual(plainly(fromDsl))
    expect(plainly(fromJson)).toEqual({
      cluster: { kind: "redis", url, host: "10.0.0.7", port: 6391, keyPrefix: "team-a:" },
      secretKey: SECRET_KEY
    })
    // Inline strings, and the default key prefix.
    const inline = await Effect.runPromise(decodeApertureJson({
      cluster: { redis: { url: "rediss://cache.internal" } },
      secret_key: SECRET_KEY
    }, "aperture.json"))
    expect(inline.cluster).toMatchObject({ kind: "redis", host: "cache.internal", port: 6379, keyPrefix: "aperture:" })
    expect(inline.warnings).toEqual([])
  })

  it("reports the DSL's errors at the JSON's field names", async () => {
    expect(await jsonIssuesOf({ cluster: { redis: { url: "redis://127.0.0.1" } } })).toEqual([{
      path: "secret_key",
      message: "required with cluster: shared tokens are kept in Redis encrypted; set \"secret_key\": { \"env\": \"APERTURE_SECRET_KEY\" }"
    }])
    expect(await jsonIssuesOf({ cluster: { redis: { url: "redis://127.0.0.1" } }, secret_key: "short" })).toEqual([{
      path: "secret_key",
      message: "must be at least 32 characters (e.g. openssl rand -base64 32)"
    }])
    const scheme = await jsonIssuesOf({ cluster: { redis: { url: `http://u:${PASSWORD}@127.0.0.1` } }, secret_key: SECRET_KEY })
    expect(scheme).toEqual([{ path: "cluster.redis.url", message: "unsupported scheme \"http\"; expected redis or rediss" }])
    expect(JSON.stringify(scheme)).not.toContain(PASSWORD)
    expect(await jsonIssuesOf({ cluster: { redis: { url: { env: "REDIS_URL" } } }, secret_key: { env: "APERTURE_SECRET_KEY" } }))
      .toEqual([
        { path: "cluster.redis.url", message: "environment variable REDIS_URL is not set" },
        { path: "secret_key", message: "environment variable APERTURE_SECRET_KEY is not set" }
      ])
  })

  it("rejects unknown and malformed fields with their JSON paths, beside every other problem", async () => {
    expect(await jsonIssuesOf({
      cluster: { redis: { url: "redis://h", keyPrefix: "x:" }, sentinel: true },
      secret_key: SECRET_KEY,
      grants: [{ src: "alice" }]
    })).toEqual([
      { path: "cluster.sentinel", message: "unexpected field" },
      { path: "cluster.redis.keyPrefix", message: "unexpected field" },
      { path: "grants.0.src", message: expect.any(String) }
    ])
    expect(await jsonIssuesOf({ cluster: { redis: { key_prefix: 7 } }, secret_key: SECRET_KEY })).toEqual([
      { path: "cluster.redis.url", message: "is required" },
      { path: "cluster.redis.key_prefix", message: "Expected string, actual 7" }
    ])
    expect(await jsonIssuesOf({ cluster: "redis://h", secret_key: SECRET_KEY })).toEqual([
      { path: "cluster", message: "expected { \"redis\": { \"url\": … } }" }
    ])
    expect(await jsonIssuesOf({ cluster: { redis: { url: "redis://h" } }, secret_key: { file: "key" } })).toEqual([
      { path: "secret_key", message: "expected a non-empty string or { \"env\": \"NAME\" }" }
    ])
    expect(await jsonIssuesOf({ cluster: { redis: { url: { env: "" } } }, secret_key: SECRET_KEY })).toEqual([
      { path: "cluster.redis.url", message: "expected a non-empty string or { \"env\": \"NAME\" }" }
    ])
    expect(await jsonIssuesOf({ cluster: {}, secret_key: SECRET_KEY })).toEqual([{ path: "cluster.redis", message: "is required" }])
    expect(await jsonIssuesOf({ secretKey: SECRET_KEY })).toEqual([{ path: "secretKey", message: "unexpected field" }])
  })
})

describe("aperture CLI with cluster", () => {
  it("check prints the Redis host, port and key prefix, never the password", async () => {
    const config = configFile("cluster.config.ts", `redis({ url: env("REDIS_URL"), keyPrefix: "team-a:" })`)
    const { code, output } = await run(["check", "--config", config], {
      REDIS_URL: `redis://default:${PASSWORD}@127.0.0.1:6379/0`,
      APERTURE_SECRET_KEY: SECRET_KEY
    })
    expect(output).toContain("cluster: redis 127.0.0.1:6379 (key prefix team-a:)")
    expect(output).not.toContain(PASSWORD)
    expect(output).not.toContain(SECRET_KEY)
    expect(code).toBe(0)
    const plain = await run(["check", "--config", join(repoRoot, "aperture.config.ts")])
    expect(plain.output).toContain("cluster: none (one process, in-memory state)")
  })

  it("check on the original's JSON with cluster prints the same line, never the password or key", async () => {
    const config = join(dir, "aperture.json")
    writeFileSync(config, `{
      // JSONC, as the original's file may be
      "cluster": { "redis": { "url": { "env": "REDIS_URL" }, "key_prefix": "team-b:" } },
      "secret_key": { "env": "APERTURE_SECRET_KEY" },
    }`)
    const { code, output } = await run(["check", "--config", config], {
      REDIS_URL: `rediss://default:${PASSWORD}@10.1.2.3:6380/0`,
      APERTURE_SECRET_KEY: SECRET_KEY
    })
    expect(output).toContain("cluster: redis 10.1.2.3:6380 (key prefix team-b:)")
    expect(output).not.toContain(PASSWORD)
    expect(output).not.toContain(SECRET_KEY)
    expect(code).toBe(0)
    const bad = join(dir, "bad.json")
    writeFileSync(bad, JSON.stringify({ cluster: { redis: { url: `http://u:${PASSWORD}@h` } } }))
    const refused = await run(["check", "--config", bad])
    expect(refused.code).not.toBe(0)
    expect(refused.output).toContain("cluster.redis.url: unsupported scheme \"http\"; expected redis or rediss")
    expect(refused.output).toContain("secret_key: required with cluster")
    expect(refused.output).not.toContain(PASSWORD)
  })

  it("start exits 1 within seconds with a clear message when Redis is unreachable", async () => {
    const deadPort = await freePort()
    const config = configFile("dead.config.ts", `redis({ url: env("REDIS_URL") })`)
    const { code, ms, output } = await run(["start", "--config", config, "--port", "0"], {
      REDIS_URL: `redis://user:${PASSWORD}@127.0.0.1:${deadPort}`,
      APERTURE_SECRET_KEY: SECRET_KEY
    })
    expect(code).toBe(1)
    expect(output).toContain(`aperture: cannot reach Redis at 127.0.0.1:${deadPort} (cluster.url): `)
    expect(output).toMatch(/ECONNREFUSED/)
    expect(output).not.toContain(PASSWORD)
    expect(ms).toBeLessThan(10_000)
  })
})

describe("a gateway on a real Redis", () => {
  let gateway: RunningGateway
  beforeAll(async () => {
    gateway = await startGateway({
      cluster: redis({ url: store.url }),
      secretKey: SECRET_KEY,
      connectors: { fx: mcp({ url: fx.url }) },
      grants: [grant({ src: ["local"], connectors: ["fx/**"] })]
    })
  })
  afterAll(async () => {
    await gateway?.close()
  })

  const healthz = async (query = "") => {
    const response = await fetch(`${gateway.origin}/healthz${query}`)
    return { status: response.status, body: await response.json() as Record<string, any> }
  }
  const connectorsApi = async () => (await (await fetch(`${gateway.origin}/api/connectors`)).json()) as Record<string, any>

  it("reports Redis down as degraded, still serves 2026-era calls, and recovers by itself", async () => {
    await eventually(async () => (await healthz("?ready")).status === 200, 20_000, "ready")
    expect((await healthz()).body).toMatchObject({ status: "ok", cluster: { redis: "up" } })
    expect(await connectorsApi()).not.toHaveProperty("degraded")

    await store.stop()
    const down = await eventually(async () => {
      const h = await healthz()
      return h.body["status"] === "degraded" ? h : undefined
    }, 10_000, "degraded")
    expect(down.status).toBe(200)
    expect(down.body["cluster"]).toMatchObject({ redis: "down", since: expect.any(String), reason: expect.any(String) })
    // Still ready: every replica shares this Redis, and 2026-era traffic is still served.
    const readyWhileDown = await healthz("?ready")
    expect(readyWhileDown.status).toBe(200)
    expect(readyWhileDown.body["status"]).toBe("degraded")
    const api = await connectorsApi()
    expect(api["degraded"]).toEqual([expect.stringMatching(new RegExp(`^redis at 127\\.0\\.0\\.1:${store.port} unreachable since \\S+: .+`))])

    const client = await connectV2(gateway.url)
    try {
      expect(await client.callTool({ name: "fx_whoami", arguments: {} })).toMatchObject({ content: [{ text: "fx" }] })
    } finally {
      await client.close()
    }

    await store.start()
    await eventually(async () => (await healthz()).body["status"] === "ok", 10_000, "ok again")
    expect((await healthz()).body["cluster"]).toEqual({ redis: "up" })
    expect((await healthz("?ready")).status).toBe(200)
    expect(await connectorsApi()).not.toHaveProperty("degraded")
  })

  it("without cluster, neither field appears", async () => {
    const plain = await startGateway({})
    try {
      const health = await (await fetch(`${plain.origin}/healthz`)).json()
      expect(health).not.toHaveProperty("cluster")
      expect(await (await fetch(`${plain.origin}/api/connectors`)).json()).not.toHaveProperty("degraded")
    } finally {
      await plain.close()
    }
  })
})
