/**
 * `GET/PUT /api/config` on `aperture start` with a JSON config: optimistic concurrency (409 on a
 * stale hash), validation (400 with every problem's path, nothing changed), secrets shown as a
 * placeholder and kept by a PUT that sends it back, the write applied as a reload while a
 * session's call runs (applied once: the watcher sees its own hash), admins only (403 otherwise).
 * The placeholder keeps a secret only while its connector's destination is unchanged, a PUT names
 * only environment variables the file already references, a syntax error never quotes the file,
 * and a symlinked config stays a link.
 */
import { createHash } from "node:crypto"
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { grant, mcp } from "../src/config/dsl.js"
import { ENV_MOVED, SECRET_PLACEHOLDER, restoreSecrets } from "../src/config/jsonSecrets.js"
import { loopback } from "../src/index.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { type CliGateway, startCliGateway } from "./helpers/cliGateway.js"
import { connectV1, eventually, startGateway } from "./helpers/gateway.js"
import { repoRoot, tsNode } from "./helpers/processes.js"

const SECRET = "tok-inline-8d3a61f2c4"
const ADMIN_GRANT = { src: ["*"], app: { "tailscale.com/cap/aperture": [{ connectors: ["**"] }, { role: "admin" }] } }

let fx: V2Upstream
let fx2: V2Upstream
let dir: string
let configPath: string
let gateway: CliGateway

type ConfigAnswer = { config: Record<string, any>; hash: string; editable: boolean }

const getConfig = async () => {
  const response = await fetch(`${gateway.origin}/api/config`)
  expect(response.status).toBe(200)
  return (await response.json()) as ConfigAnswer
}
const putConfig = (body: unknown) =>
  fetch(`${gateway.origin}/api/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
const connectorIds = async () =>
  ((await (await fetch(`${gateway.origin}/api/connectors`)).json()) as { connectors: Array<{ id: string; status: string }> }).connectors

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  fx2 = await startV2Upstream({ name: "fx2" })
  dir = mkdtempSync(join(tmpdir(), "aperture-config-api-"))
  configPath = join(dir, "aperture.json")
  writeFileSync(configPath, JSON.stringify({
    connectors: { servers: { fx: { protocol: "mcp", url: fx.url, auth: { type: "bearer_token", secret: SECRET } } } },
    grants: [ADMIN_GRANT]
  }, null, 2))
  gateway = await startCliGateway(configPath)
  await eventually(async () => (await connectorIds()).find((c) => c.id === "fx")?.status === "ready", 30_000, "fx ready")
}, 90_000)

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
  await fx2?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe("/api/config", () => {
  it("answers the file's config with its hash, a literal secret as a placeholder", async () => {
    const response = await fetch(`${gateway.origin}/api/config`)
    const text = await response.text()
    expect(response.status).toBe(200)
    expect(text).not.toContain(SECRET)
    const answer = JSON.parse(text) as ConfigAnswer
    expect(answer.editable).toBe(true)
    expect(answer.hash).toMatch(/^[0-9a-f]{64}$/)
    expect(answer.config.connectors.servers.fx.auth).toEqual({ type: "bearer_token", secret: "********" })
  })

  it("refuses a stale hash with 409, changing nothing", async () => {
    const { config, hash } = await getConfig()
    const response = await putConfig({ config, hash: "0".repeat(64) })
    expect(response.status).toBe(409)
    expect(await response.json()).toMatchObject({ error: "stale_hash", hash })
    expect((await getConfig()).hash).toBe(hash)
  })

  it("refuses an invalid config with 400 and every problem's path; the running config stays", async () => {
    const { config, hash } = await getConfig()
    config.connectors.servers.bad = { protocol: "carrier-pigeon", url: "not a url" }
    config.connectors.servers.fx.auth = { type: "bearer_token", secert: "typo" }
    const response = await putConfig({ config, hash })
    expect(response.status).toBe(400)
    const body = (await response.json()) as { error: string; issues: Array<{ path: string; message: string }> }
    expect(body.error).toBe("invalid_config")
    const paths = body.issues.map((i) => i.path)
    expect(paths.some((p) => p.startsWith("connectors.servers.bad"))).toBe(true)
    expect(paths.some((p) => p.startsWith("connectors.servers.fx.auth"))).toBe(true)
    expect((await getConfig()).hash).toBe(hash)
    expect((await connectorIds()).map((c) => c.id)).toEqual(["fx"])
  })

  it("applies a valid PUT while a session's call runs, writes it back keeping the secret, and reloads once", async () => {
    const { client } = await connectV1(gateway.url)
    try {
      const call = client.callTool({ name: "fx_slow", arguments: { steps: 10, ms: 200 } })
      const { config, hash } = await getConfig()
      config.connectors.servers.fx2 = { protocol: "mcp", url: fx2.url }
      const response = await putConfig({ config, hash })
      expect(response.status).toBe(200)
      const answer = (await response.json()) as { hash: string; applied: { connectors: { added: Array<string> }; summary: string } }
      expect(answer.applied.connectors.added).toEqual(["fx2"])
      expect(answer.hash).not.toBe(hash)
      expect((await call as { content: Array<{ text: string }> }).content[0]!.text).toBe("done after 10")
      await eventually(async () => (await connectorIds()).find((c) => c.id === "fx2")?.status === "ready", 20_000, "fx2 ready")
      expect(((await client.callTool({ name: "fx2_whoami", arguments: {} })) as { content: Array<{ text: string }> }).content[0]!.text).toContain("fx2")
      // The file holds the secret the placeholder stood for, and the same hash GET answers.
      const written = readFileSync(configPath, "utf8")
      expect(JSON.parse(written).connectors.servers.fx.auth.secret).toBe(SECRET)
      expect((await getConfig()).hash).toBe(answer.hash)
      // The watcher saw the write and did not apply it a second time.
      await new Promise((r) => setTimeout(r, 1000))
      expect(gateway.linesWith(`config reloaded (hash ${answer.hash.slice(0, 12)})`)).toHaveLength(1)
    } finally {
      await client.close()
    }
  })
})

type Refused = { error: string; issues: Array<{ path: string; message: string }> }
const DESTINATION_CHANGED = "the connector's destination changed: write the secret again (\"********\" keeps a secret only where it goes)"
const NEW_ENV = ENV_MOVED

describe("/api/config keeps a secret only where it goes", () => {
  const refused = async (edit: (config: Record<string, any>) => void) => {
    const { config, hash } = await getConfig()
    edit(config)
    const response = await putConfig({ config, hash })
    const text = await response.text()
    expect(response.status).toBe(400)
    expect(text).not.toContain(SECRET)
    // Nothing was written.
    expect((await getConfig()).hash).toBe(hash)
    expect(JSON.parse(readFileSync(configPath, "utf8")).connectors.servers.fx.auth.secret).toBe(SECRET)
    return JSON.parse(text) as Refused
  }

  it("refuses the placeholder under a connector whose url changed", async () => {
    const body = await refused((config) => {
      config.connectors.servers.fx.url = fx2.url
    })
    expect(body).toEqual({
      error: "invalid_config",
      message: expect.any(String),
      issues: [{ path: "connectors.servers.fx.auth.secret", message: DESTINATION_CHANGED }]
    })
  })

  it("refuses it when the auth type changed (bearer_token → api_key in the query)", async () => {
    const body = await refused((config) => {
      config.connectors.servers.fx.auth = { type: "api_key", in: "query", name: "key", secret: SECRET_PLACEHOLDER }
    })
    expect(body.issues).toEqual([{ path: "connectors.servers.fx.auth.secret", message: DESTINATION_CHANGED }])
  })

  it("refuses it when the protocol changed", async () => {
    const body = await refused((config) => {
      config.connectors.servers.fx.protocol = "http"
    })
    expect(body.issues).toEqual([{ path: "connectors.servers.fx.auth.secret", message: DESTINATION_CHANGED }])
  })

  it("keeps it when only other settings changed", async () => {
    const { config, hash } = await getConfig()
    config.connectors.servers.fx.description = "the fixture"
    const response = await putConfig({ config, hash })
    expect(response.status).toBe(200)
    const written = JSON.parse(readFileSync(configPath, "utf8"))
    expect(written.connectors.servers.fx).toMatchObject({ description: "the fixture", auth: { type: "bearer_token", secret: SECRET } })
  })

  it("refuses it when a token_url, auth_url or client_id changed, and keeps it when none did", () => {
    const current = {
      connectors: {
        servers: {
          cc: { protocol: "mcp", url: "https://mcp.example.com/mcp", auth: { type: "oauth2_client_credentials", client_id: "app", client_secret: "cs-1", token_url: "https://idp.example.com/token" } },
          user: {
            protocol: "mcp",
            url: "https://mcp.example.com/user",
            auth: { type: "oauth2_authorization_code", client_id: "app", client_secret: "cs-2", auth_url: "https://idp.example.com/authorize", token_url: "https://idp.example.com/token" }
          }
        }
      },
      cluster: { redis: { url: "redis://:pw@redis.internal:6379" } }
    }
    const edited = (change: (config: any) => void) => {
      const config = structuredClone(current) as any
      config.connectors.servers.cc.auth.client_secret = SECRET_PLACEHOLDER
      config.connectors.servers.user.auth.client_secret = SECRET_PLACEHOLDER
      config.cluster.redis.url = SECRET_PLACEHOLDER
      change(config)
      return restoreSecrets(config, current)
    }
    const unchanged = edited(() => {})
    expect(unchanged.issues).toEqual([])
    expect(unchanged.value).toEqual(current)
    expect(edited((c) => {
      c.connectors.servers.cc.auth.token_url = "https://evil.example.net/token"
    }).issues).toEqual([{ path: "connectors.servers.cc.auth.client_secret", message: DESTINATION_CHANGED }])
    expect(edited((c) => {
      c.connectors.servers.user.auth.auth_url = "https://evil.example.net/authorize"
      c.connectors.servers.cc.auth.client_id = "other-app"
    }).issues.map((i) => i.path)).toEqual(["connectors.servers.cc.auth.client_secret", "connectors.servers.user.auth.client_secret"])
    // The key order of the auth block is not a change.
    expect(edited((c) => {
      const { client_id, type, ...rest } = c.connectors.servers.cc.auth
      c.connectors.servers.cc.auth = { ...rest, client_id, type }
    }).issues).toEqual([])
  })
})

describe("/api/config and environment variables", () => {
  it("refuses a reference to a variable the file does not reference, and nothing changes", async () => {
    const { config, hash } = await getConfig()
    config.connectors.servers.fx.auth = { type: "bearer_token", secret: { env: "APERTURE_SECRET_KEY" } }
    config.secret_key = { env: "AWS_SECRET_ACCESS_KEY" }
    const response = await putConfig({ config, hash })
    expect(response.status).toBe(400)
    expect(((await response.json()) as Refused).issues).toEqual([
      { path: "connectors.servers.fx.auth.secret", message: NEW_ENV },
      { path: "secret_key", message: NEW_ENV }
    ])
    expect((await getConfig()).hash).toBe(hash)
  })

  it("keeps one only where the file has it, going where it goes: not on another connector, not after a URL change", () => {
    const current = { connectors: { servers: { a: { protocol: "mcp", url: "https://a.example.com", auth: { type: "bearer_token", secret: { env: "A_TOKEN" } } } } } }
    expect(restoreSecrets(structuredClone(current), current).issues).toEqual([])
    const config = structuredClone(current) as any
    config.connectors.servers.b = { protocol: "mcp", url: "https://b.example.com", auth: { type: "bearer_token", secret: { env: "A_TOKEN" } } }
    config.connectors.servers.c = { protocol: "mcp", url: "https://c.example.com", auth: { type: "bearer_token", secret: { env: "HOME" } } }
    expect(restoreSecrets(config, current).issues).toEqual([
      { path: "connectors.servers.b.auth.secret", message: NEW_ENV },
      { path: "connectors.servers.c.auth.secret", message: NEW_ENV }
    ])
    const moved = structuredClone(current) as any
    moved.connectors.servers.a.url = "https://attacker.example.net"
    expect(restoreSecrets(moved, current).issues).toEqual([{ path: "connectors.servers.a.auth.secret", message: NEW_ENV }])
  })
})

describe("/api/config with a file that is not valid JSON", () => {
  it("says what and where, never the file's text (GET, the reload log line, aperture check)", async () => {
    const before = readFileSync(configPath, "utf8")
    const leaked = "ghp_SUPERSECRET0123456789"
    const broken = before.replace(`"secret": "${SECRET}"`, `"secret": ${leaked}`)
    expect(broken).not.toBe(before)
    const secretLine = broken.split("\n").findIndex((line) => line.includes(leaked)) + 1
    writeFileSync(configPath, broken)
    try {
      await eventually(async () => gateway.linesWith("config not reloaded").length > 0, 10_000, "the reload refused")
      const logged = gateway.linesWith("config not reloaded").join("\n")
      const response = await fetch(`${gateway.origin}/api/config`)
      expect(response.status).toBe(500)
      const answer = await response.text()
      const check = tsNode(`${repoRoot}src/cli/main.ts`, ["check", "--config", configPath])
      const code = await new Promise<number | null>((resolve) => check.child.on("exit", (c) => resolve(c)))
      expect(code).toBe(1)
      for (const said of [answer, logged, check.output()]) {
        expect(said).toContain(`line ${secretLine}, column`)
        expect(said).not.toContain("ghp")
        expect(said).not.toContain("'g'")
        expect(said).not.toContain("SUPERSECRET")
      }
    } finally {
      writeFileSync(configPath, before)
    }
    await eventually(async () => (await fetch(`${gateway.origin}/api/config`)).status === 200, 10_000, "the file readable again")
  }, 60_000)
})

describe("/api/config after a PUT that names another admin", () => {
  it("is forbidden from the next request on: the admin grant is read from the running config", async () => {
    const { config, hash } = await getConfig()
    config.grants = [
      { src: ["*"], app: { "tailscale.com/cap/aperture": [{ connectors: ["**"] }] } },
      { src: ["someone-else"], app: { "tailscale.com/cap/aperture": [{ connectors: ["**"] }, { role: "admin" }] } }
    ]
    const response = await putConfig({ config, hash })
    expect(response.status).toBe(200)
    expect(((await response.json()) as { applied: { grantsChanged: boolean } }).applied.grantsChanged).toBe(true)
    expect((await fetch(`${gateway.origin}/api/config`)).status).toBe(403)
    expect((await putConfig({ config, hash })).status).toBe(403)
  })
})

describe("/api/config for other callers and other gateways", () => {
  it("is forbidden to a caller who is not an admin, and says so when there is no config file", async () => {
    const upstream = await startV2Upstream({ name: "solo" })
    const embedded = await startGateway({
      connectors: { solo: mcp({ url: upstream.url }) },
      identity: [loopback({ login: "local" })],
      grants: [grant({ src: ["local"], connectors: ["**"] }), grant({ src: ["someone-else"], connectors: ["**"], role: "admin" })]
    })
    try {
      const response = await fetch(`${embedded.origin}/api/config`)
      expect(response.status).toBe(403)
      expect(await response.json()).toEqual({ error: "forbidden: /api/config needs a grant with role \"admin\"" })
      const put = await fetch(`${embedded.origin}/api/config`, { method: "PUT", body: "{}" })
      expect(put.status).toBe(403)
    } finally {
      await embedded.close()
    }
    const admin = await startGateway({
      connectors: { solo: mcp({ url: upstream.url }) },
      identity: [loopback({ login: "local" })],
      grants: [grant({ src: ["local"], connectors: ["**"] })]
    })
    try {
      const response = await fetch(`${admin.origin}/api/config`)
      expect(response.status).toBe(404)
      expect(await response.json()).toMatchObject({ error: "no_config_file" })
    } finally {
      await admin.close()
      await upstream.close()
    }
  })
})

describe("/api/config with a TypeScript config", () => {
  it("answers its hash, not its source, and refuses a PUT (it is edited in an editor)", async () => {
    const folder = mkdtempSync(join(tmpdir(), "aperture-config-api-ts-"))
    const file = join(folder, "aperture.config.ts")
    const source = `import { bearer, defineConfig, grant, mcp } from "aperture"
export default defineConfig({
  connectors: { fx: mcp({ url: ${JSON.stringify(fx.url)}, auth: bearer({ secret: ${JSON.stringify(SECRET)} }) }) },
  grants: [grant({ src: ["*"], connectors: ["**"] })]
})
`
    writeFileSync(file, source)
    const ts = await startCliGateway(file)
    try {
      const response = await fetch(`${ts.origin}/api/config`)
      const text = await response.text()
      expect(response.status).toBe(200)
      expect(text).not.toContain(SECRET)
      const answer = JSON.parse(text) as { hash: string; editable: boolean; message: string }
      expect(answer).toMatchObject({ editable: false, hash: createHash("sha256").update(source).digest("hex") })
      expect(answer.message).toContain("edit it in your editor")
      const put = await fetch(`${ts.origin}/api/config`, { method: "PUT", body: JSON.stringify({ config: {}, hash: answer.hash }) })
      expect(put.status).toBe(405)
      expect(put.headers.get("allow")).toBe("GET")
      expect(await put.json()).toMatchObject({ error: "not_editable" })
      expect(readFileSync(file, "utf8")).toBe(source)
    } finally {
      await ts.close()
      rmSync(folder, { recursive: true, force: true })
    }
  }, 60_000)
})

describe("/api/config with a symlinked config file", () => {
  it("writes the file the link points to; the link stays a link", async () => {
    const folder = mkdtempSync(join(tmpdir(), "aperture-config-api-link-"))
    mkdirSync(join(folder, "real"))
    const real = join(folder, "real", "aperture.json")
    const link = join(folder, "aperture.json")
    writeFileSync(real, JSON.stringify({ connectors: { servers: { fx: { protocol: "mcp", url: fx.url } } }, grants: [ADMIN_GRANT] }, null, 2))
    symlinkSync(real, link)
    const linked = await startCliGateway(link)
    try {
      const got = (await (await fetch(`${linked.origin}/api/config`)).json()) as ConfigAnswer
      got.config.connectors.servers.fx.description = "written through the link"
      const response = await fetch(`${linked.origin}/api/config`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ config: got.config, hash: got.hash })
      })
      expect(response.status).toBe(200)
      const { hash } = (await response.json()) as { hash: string }
      expect(lstatSync(link).isSymbolicLink()).toBe(true)
      const content = readFileSync(real, "utf8")
      expect(JSON.parse(content).connectors.servers.fx.description).toBe("written through the link")
      expect(createHash("sha256").update(content).digest("hex")).toBe(hash)
    } finally {
      await linked.close()
      rmSync(folder, { recursive: true, force: true })
    }
  }, 60_000)
})
