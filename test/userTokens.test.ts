/**
 * The per-user token store (issue 21), on its two real backends: better-sqlite3 in a temporary
 * state directory and a real redis-server. What is stored is never readable plaintext; a value
 * that does not open (another secretKey, moved to another user) reads as absent with one
 * warning; the file keeps grants across a restart; Redis away is an error, not "no grant".
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Effect, Exit, Logger, Redacted, Scope } from "effect"
import { createClient } from "redis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import Database from "better-sqlite3"
import { makeSqliteUserTokens, USER_TOKENS_FILE } from "../src/auth/sqliteUserTokens.js"
import type { UserGrant, UserTokensService } from "../src/auth/userTokens.js"
import { makeRedisUserTokens } from "../src/cluster/redisUserTokens.js"
import { startRedis, type TestRedis } from "./helpers/redis.js"

const SECRET = Redacted.make("the gateway's secret key, 32 characters or more")
const OTHER_SECRET = Redacted.make("a rotated secret key, also 32 characters or more")
const ACCESS = "alice-access-token-7f3a9c"
const REFRESH = "alice-refresh-token-b41e02"
const CLIENT_SECRET = "registered-client-secret-55d1"

const grantOf = (access: string, refresh?: string): UserGrant => ({
  accessToken: Redacted.make(access),
  ...(refresh === undefined ? {} : { refreshToken: Redacted.make(refresh) }),
  expiresAt: 1_900_000_000_000,
  scope: "repo read:user",
  tokenType: "Bearer"
})

/** Runs `effect`, collecting what it logs. */
const run = async <A, E>(effect: Effect.Effect<A, E>, logs: Array<string> = []): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(String(message)))))))

const plain = (grant: UserGrant | undefined) =>
  grant === undefined ? undefined : {
    accessToken: Redacted.value(grant.accessToken),
    refreshToken: grant.refreshToken === undefined ? undefined : Redacted.value(grant.refreshToken),
    expiresAt: grant.expiresAt,
    scope: grant.scope,
    tokenType: grant.tokenType
  }

const expectNoPlaintext = (bytes: Buffer) => {
  for (const secret of [ACCESS, REFRESH, CLIENT_SECRET, "repo read:user"]) {
    expect(bytes.includes(Buffer.from(secret, "utf8"))).toBe(false)
    expect(bytes.includes(Buffer.from(Buffer.from(secret).toString("base64").slice(0, 16)))).toBe(false)
  }
}

describe("embedded store (SQLite)", () => {
  const dirs: Array<string> = []
  const scopes: Array<Scope.CloseableScope> = []
  afterAll(async () => {
    for (const scope of scopes) await Effect.runPromise(Scope.close(scope, Exit.void))
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })
  const freshDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "aperture-user-tokens-"))
    dirs.push(dir)
    return join(dir, "state")
  }
  /** Opens the store in `stateDir`; `close` ends it as a shutdown would. */
  const open = async (stateDir: string, secretKey = SECRET) => {
    const scope = Effect.runSync(Scope.make())
    scopes.push(scope)
    const store = await Effect.runPromise(makeSqliteUserTokens({ stateDir, secretKey }).pipe(Scope.extend(scope)))
    return { store, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
  }

  it("round-trips grants and registrations, and the files hold no plaintext (directory 0700, file 0600)", async () => {
    const stateDir = freshDir()
    const { close, store } = await open(stateDir)
    expect(statSync(stateDir).mode & 0o777).toBe(0o700)
    expect(statSync(join(stateDir, USER_TOKENS_FILE)).mode & 0o777).toBe(0o600)
    expect(store.kind).toBe("sqlite")
    expect(await run(store.get("alice", "github"))).toBeUndefined()
    await run(store.put("alice", "github", grantOf(ACCESS, REFRESH)))
    await run(store.put("alice", "linear", grantOf("alice-linear-token")))
    await run(store.putRegistration("notion", { clientId: "client-123", clientSecret: Redacted.make(CLIENT_SECRET), registeredAt: 1_700_000_000_000 }))
    expect(plain(await run(store.get("alice", "github")))).toEqual({
      accessToken: ACCESS, refreshToken: REFRESH, expiresAt: 1_900_000_000_000, scope: "repo read:user", tokenType: "Bearer"
    })
    expect(plain(await run(store.get("alice", "linear")))?.refreshToken).toBeUndefined()
    expect(await run(store.get("bob", "github"))).toBeUndefined()
    const registration = await run(store.getRegistration("notion"))
    expect(registration?.clientId).toBe("client-123")
    expect(registration?.clientSecret && Redacted.value(registration.clientSecret)).toBe(CLIENT_SECRET)
    expect(await run(store.getRegistration("github"))).toBeUndefined()
    expect(await run(store.connectorsOf("alice", ["notion", "linear", "github", "gone"]))).toEqual(["linear", "github"])
    // While open, the WAL holds the latest writes; every file in the directory is checked.
    for (const name of readdirSync(stateDir)) {
      expect(statSync(join(stateDir, name)).mode & 0o077).toBe(0)
      expectNoPlaintext(readFileSync(join(stateDir, name)))
    }
    await close()
    expectNoPlaintext(readFileSync(join(stateDir, USER_TOKENS_FILE)))
  })

  it("keeps grants across a restart, and forgets a deleted one", async () => {
    const stateDir = freshDir()
    const first = await open(stateDir)
    await run(first.store.put("alice", "github", grantOf(ACCESS, REFRESH)))
    await run(first.store.put("bob", "github", grantOf("bob-access")))
    await first.close()
    const second = await open(stateDir)
    expect(plain(await run(second.store.get("alice", "github")))?.refreshToken).toBe(REFRESH)
    await run(second.store.delete("alice", "github"))
    await run(second.store.delete("alice", "never-connected"))
    expect(await run(second.store.get("alice", "github"))).toBeUndefined()
    expect(plain(await run(second.store.get("bob", "github")))?.accessToken).toBe("bob-access")
    await second.close()
    const third = await open(stateDir)
    expect(await run(third.store.get("alice", "github"))).toBeUndefined()
    expect(await run(third.store.connectorsOf("bob", ["github"]))).toEqual(["github"])
    await third.close()
  })

  it("another secretKey reads every stored value as absent, with one warning per connector naming no secret", async () => {
    const stateDir = freshDir()
    const first = await open(stateDir)
    await run(first.store.put("alice", "github", grantOf(ACCESS, REFRESH)))
    await run(first.store.put("bob", "github", grantOf("bob-access")))
    await run(first.store.putRegistration("github", { clientId: "c", clientSecret: Redacted.make(CLIENT_SECRET), registeredAt: 1 }))
    await first.close()
    const rotated = await open(stateDir, OTHER_SECRET)
    const logs: Array<string> = []
    expect(await run(rotated.store.get("alice", "github"), logs)).toBeUndefined()
    expect(await run(rotated.store.get("bob", "github"), logs)).toBeUndefined()
    expect(await run(rotated.store.getRegistration("github"), logs)).toBeUndefined()
    expect(await run(rotated.store.connectorsOf("alice", ["github"]), logs)).toEqual([])
    expect(logs).toEqual([
      "stored tokens for connector github could not be decrypted with the configured secretKey; users will reconnect"
    ])
    // Connecting again overwrites the old row under the new key.
    await run(rotated.store.put("alice", "github", grantOf("alice-new-access")))
    expect(plain(await run(rotated.store.get("alice", "github")))?.accessToken).toBe("alice-new-access")
    await rotated.close()
  })

  it("a row copied to another user or connector does not open", async () => {
    const stateDir = freshDir()
    const { close, store } = await open(stateDir)
    await run(store.put("alice", "github", grantOf(ACCESS, REFRESH)))
    await run(store.put("bob", "github", grantOf("bob-access")))
    await run(store.put("bob", "linear", grantOf("bob-linear")))
    // Someone with the file but not the key swaps rows, from another connection (another process).
    const raw = new Database(join(stateDir, USER_TOKENS_FILE))
    raw.prepare(
      `UPDATE user_tokens SET (ciphertext, iv) = (SELECT ciphertext, iv FROM user_tokens WHERE login = 'alice' AND connector = 'github')
       WHERE (login = 'bob' AND connector = 'github') OR (login = 'bob' AND connector = 'linear')`
    ).run()
    raw.close()
    const logs: Array<string> = []
    expect(await run(store.get("bob", "github"), logs)).toBeUndefined()
    expect(await run(store.get("bob", "linear"), logs)).toBeUndefined()
    expect(logs).toHaveLength(2)
    expect(plain(await run(store.get("alice", "github")))?.accessToken).toBe(ACCESS)
    await close()
  })

  it("concurrent puts, from one store and from two on the same file, all land", async () => {
    const stateDir = freshDir()
    const one = await open(stateDir)
    const two = await open(stateDir)
    const users = Array.from({ length: 40 }, (_, i) => `user${i}`)
    await run(Effect.all(
      users.flatMap((user, i) => [
        (i % 2 === 0 ? one : two).store.put(user, "github", grantOf(`${user}-github`)),
        (i % 2 === 0 ? two : one).store.put(user, "linear", grantOf(`${user}-linear`)),
        // The same user and connector written by both at once: one of the two wins, whole.
        one.store.put("shared", "github", grantOf(`one-${i}`)),
        two.store.put("shared", "github", grantOf(`two-${i}`))
      ]),
      { concurrency: "unbounded" }
    ))
    for (const user of users) {
      expect(plain(await run(one.store.get(user, "github")))?.accessToken).toBe(`${user}-github`)
      expect(plain(await run(two.store.get(user, "linear")))?.accessToken).toBe(`${user}-linear`)
    }
    expect(plain(await run(one.store.get("shared", "github")))?.accessToken).toMatch(/^(one|two)-\d+$/)
    await one.close()
    await two.close()
  })

  it("a state directory that cannot be created is an error at open, naming the file", async () => {
    const dir = freshDir()
    const blocker = join(dir, "..", "a-file")
    await run(Effect.promise(async () => (await import("node:fs")).writeFileSync(blocker, "")))
    const exit = await Effect.runPromiseExit(Effect.scoped(makeSqliteUserTokens({ stateDir: join(blocker, "state"), secretKey: SECRET })))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain(join(blocker, "state", USER_TOKENS_FILE))
  })
})

describe("cluster store (Redis)", () => {
  const PREFIX = "test-aperture:"
  let redisServer: TestRedis
  let client: ReturnType<typeof createClient>
  beforeAll(async () => {
    redisServer = await startRedis()
    client = createClient({
      url: redisServer.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 300) }
    })
    client.on("error", () => {})
    await client.connect()
  }, 120_000)
  afterAll(async () => {
    client?.destroy()
    await redisServer?.stop()
  })
  const storeWith = (secretKey = SECRET): UserTokensService => makeRedisUserTokens({ client, keyPrefix: PREFIX, secretKey })

  it("round-trips grants and registrations, and Redis holds no plaintext", async () => {
    const store = storeWith()
    expect(store.kind).toBe("redis")
    expect(await run(store.get("alice", "github"))).toBeUndefined()
    await run(store.put("alice", "github", grantOf(ACCESS, REFRESH)))
    await run(store.put("alice", "linear", grantOf("alice-linear")))
    await run(store.putRegistration("notion", { clientId: "client-123", clientSecret: Redacted.make(CLIENT_SECRET), registeredAt: 5 }))
    expect(plain(await run(store.get("alice", "github")))).toEqual({
      accessToken: ACCESS, refreshToken: REFRESH, expiresAt: 1_900_000_000_000, scope: "repo read:user", tokenType: "Bearer"
    })
    expect((await run(store.getRegistration("notion")))?.clientId).toBe("client-123")
    expect(await run(store.connectorsOf("alice", ["notion", "linear", "github"]))).toEqual(["linear", "github"])
    expect((await client.keys(`${PREFIX}*`)).sort()).toEqual([
      `${PREFIX}registration:notion`, `${PREFIX}usertokens:github`, `${PREFIX}usertokens:linear`
    ])
    const stored = await client.hGetAll(`${PREFIX}usertokens:github`)
    expect(Object.keys(stored)).toEqual(["alice"])
    const everything = Buffer.concat([
      ...Object.values(stored).map((v) => Buffer.from(v)),
      Buffer.from(String(await client.get(`${PREFIX}registration:notion`)))
    ])
    expectNoPlaintext(everything)
    // Redis' own view of the bytes, as a dump would hold them.
    expectNoPlaintext(Buffer.from(String(await client.sendCommand(["DUMP", `${PREFIX}usertokens:github`])), "latin1"))
  })

  it("delete, another key, and a value moved to another user: absent, with one warning", async () => {
    const store = storeWith()
    await run(store.put("alice", "jira", grantOf(ACCESS, REFRESH)))
    await run(store.put("carol", "jira", grantOf("carol-access")))
    await run(store.delete("carol", "jira"))
    expect(await run(store.get("carol", "jira"))).toBeUndefined()
    expect(Number(await client.hExists(`${PREFIX}usertokens:jira`, "carol"))).toBe(0)
    // Alice's value put in Bob's field, and under another connector.
    const alices = String(await client.hGet(`${PREFIX}usertokens:jira`, "alice"))
    await client.hSet(`${PREFIX}usertokens:jira`, "bob", alices)
    await client.hSet(`${PREFIX}usertokens:confluence`, "alice", alices)
    const logs: Array<string> = []
    expect(await run(store.get("bob", "jira"), logs)).toBeUndefined()
    expect(await run(store.get("alice", "confluence"), logs)).toBeUndefined()
    expect(await run(store.connectorsOf("bob", ["jira"]), logs)).toEqual([])
    expect(logs).toEqual([
      "stored tokens for connector jira could not be decrypted with the configured secretKey; users will reconnect",
      "stored tokens for connector confluence could not be decrypted with the configured secretKey; users will reconnect"
    ])
    // A replica with another key: absent, no crash; its own write replaces the value.
    const rotated = storeWith(OTHER_SECRET)
    expect(await run(rotated.get("alice", "jira"))).toBeUndefined()
    await run(rotated.put("alice", "jira", grantOf("alice-again")))
    expect(plain(await run(rotated.get("alice", "jira")))?.accessToken).toBe("alice-again")
  })

  it("concurrent puts all land", async () => {
    const store = storeWith()
    const users = Array.from({ length: 40 }, (_, i) => `user${i}`)
    await run(Effect.all(users.map((user) => store.put(user, "slack", grantOf(`${user}-slack`))), { concurrency: "unbounded" }))
    for (const user of users) expect(plain(await run(store.get(user, "slack")))?.accessToken).toBe(`${user}-slack`)
    expect(await client.hLen(`${PREFIX}usertokens:slack`)).toBe(40)
  })

  it("while Redis is away, reads and writes fail as unavailable (not 'no grant'); afterwards they work", async () => {
    const store = storeWith()
    await redisServer.stop()
    try {
      for (const effect of [store.get("alice", "github"), store.put("alice", "github", grantOf("x")), store.delete("alice", "github")]) {
        const exit = await Effect.runPromiseExit(effect as Effect.Effect<unknown, unknown>)
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain("per-user token store unavailable: Redis")
      }
    } finally {
      await redisServer.start()
    }
    const started = Date.now()
    while (!client.isReady && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 50))
    // The server came back empty (no persistence here): the user connects again.
    expect(await run(store.get("alice", "github"))).toBeUndefined()
    await run(store.put("alice", "github", grantOf(ACCESS)))
    expect(plain(await run(store.get("alice", "github")))?.accessToken).toBe(ACCESS)
  })
})
