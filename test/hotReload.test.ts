/**
 * Config hot reload: a new config applied to a running gateway while a 2025-era client holds a
 * session and a slow call runs. The session and the call survive; only connectors whose
 * settings changed are reconnected (the stdio upstream's pid stays the same); grants apply to the
 * next request; the log and `/api/connectors` say what changed.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { grant, http, mcp, stdio } from "../src/config/dsl.js"
import type { UserConfig } from "../src/config/dsl.js"
import { apiKeys, hashApiKey, loopback } from "../src/index.js"
import { startHttpUpstream } from "./fixtures/httpUpstream.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { startCapturingGateway } from "./helpers/capture.js"
import { type CliGateway, startCliGateway } from "./helpers/cliGateway.js"
import { connectorsOf, connectV1, errorOf, eventually } from "./helpers/gateway.js"
import { repoRoot } from "./helpers/processes.js"

let fx: V2Upstream
let fx2: V2Upstream
let gateway: Awaited<ReturnType<typeof startCapturingGateway>>
let client: Awaited<ReturnType<typeof connectV1>>["client"]

const steady = stdio({ command: process.execPath, args: ["--import", "tsx", `${repoRoot}test/fixtures/stdioUpstream.ts`], cwd: repoRoot })

const configWith = (extra: { connectors?: UserConfig["connectors"]; grants?: UserConfig["grants"] } = {}): UserConfig => ({
  connectors: { fx: mcp({ url: fx.url }), steady, ...extra.connectors },
  identity: [loopback({ login: "local" })],
  grants: extra.grants ?? [grant({ src: ["local"], connectors: ["**"] })]
})

const textOf = (result: unknown) => ((result as { content: Array<{ text: string }> }).content[0]!.text)
const idsAt = async () => (await connectorsOf(gateway)).connectors.map((c) => c.id).sort()
const statusAt = async (id: string) => (await connectorsOf(gateway)).connectors.find((c) => c.id === id)?.status
const steadyPid = async () => textOf(await client.callTool({ name: "steady_pid", arguments: {} }))
/** A call of the upstream's slow tool (about 2 s), started now. */
const slowCall = () => client.callTool({ name: "fx_slow", arguments: { steps: 10, ms: 200 } })

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  fx2 = await startV2Upstream({ name: "fx2" })
  gateway = await startCapturingGateway(configWith())
  await eventually(async () => (await statusAt("fx")) === "ready" && (await statusAt("steady")) === "ready", 30_000, "fx and steady ready")
  client = (await connectV1(gateway.url)).client
}, 60_000)

afterAll(async () => {
  await client?.close()
  await gateway?.close()
  await fx?.close()
  await fx2?.close()
})

describe("hot reload", () => {
  it("adds a connector while a call runs; the call, the session and the other connectors stay", async () => {
    const pid = await steadyPid()
    const call = slowCall()
    const applied = await gateway.reload(configWith({ connectors: { extra: mcp({ url: fx2.url }) } }))
    expect(applied.summary).toBe("connectors added: extra")
    expect(textOf(await call)).toBe("done after 10")
    await eventually(async () => (await statusAt("extra")) === "ready", 20_000, "extra ready")
    expect(await idsAt()).toEqual(["extra", "fx", "steady"])
    expect(textOf(await client.callTool({ name: "extra_whoami", arguments: {} }))).toContain("fx2")
    expect(await steadyPid()).toBe(pid)
    expect(gateway.captured.text()).toMatch(/config reloaded \(hash [0-9a-f]{12}\): connectors added: extra/)
  })

  it("restarts a changed connector only", async () => {
    const pid = await steadyPid()
    const call = slowCall()
    const applied = await gateway.reload(configWith({ connectors: { extra: mcp({ url: fx2.url, description: "now described" }) } }))
    expect(applied.summary).toBe("connectors changed: extra")
    expect(textOf(await call)).toBe("done after 10")
    await eventually(async () => (await statusAt("extra")) === "ready", 20_000, "extra ready again")
    expect(await steadyPid()).toBe(pid)
  })

  it("removes a connector while a call runs: it is gone from /api/connectors and the lists", async () => {
    const call = slowCall()
    const applied = await gateway.reload(configWith())
    expect(applied.summary).toBe("connectors removed: extra")
    expect(textOf(await call)).toBe("done after 10")
    expect(await idsAt()).toEqual(["fx", "steady"])
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("extra_whoami")
    expect((await errorOf(client.callTool({ name: "extra_whoami", arguments: {} }))).code).toBe(-32602)
    expect(gateway.captured.text()).toContain("connectors removed: extra")
  })

  it("swaps the grants for the next request; the running call and the session stay", async () => {
    const pid = await steadyPid()
    let told = 0
    const listener = (await connectV1(gateway.url, { onToolsChanged: () => void told++ })).client
    const call = slowCall()
    const applied = await gateway.reload(configWith({ grants: [grant({ src: ["local"], connectors: ["fx/**"] })] }))
    expect(applied.summary).toBe("grants changed")
    // Sessions whose view changed are told their tools changed.
    await eventually(() => told > 0, 10_000, "tools list_changed")
    await listener.close()
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("steady_pid")
    expect((await errorOf(client.callTool({ name: "steady_pid", arguments: {} }))).code).toBe(-32602)
    expect(textOf(await call)).toBe("done after 10")
    await gateway.reload(configWith())
    expect(await steadyPid()).toBe(pid)
  })

  it("swaps the identity plugins for the next request", async () => {
    const key = "hot-reload-test-key-6c1e9a0b7d"
    const asKey = async () =>
      ((await (await fetch(`${gateway.origin}/api/connectors`, { headers: { "x-api-key": key } })).json()) as {
        connectors: Array<{ id: string; status: string }>
      }).connectors.find((c) => c.id === "steady")?.status
    const grants = [grant({ src: ["local"], connectors: ["**"] }), grant({ src: ["ci"], connectors: ["fx/**"] })]
    await gateway.reload(configWith({ grants }))
    // Only loopback: the key is not looked at, and the caller is "local".
    expect(await asKey()).toBe("ready")
    const applied = await gateway.reload({
      ...configWith({ grants }),
      identity: [apiKeys({ keys: { [hashApiKey(key)]: { login: "ci" } } }), loopback({ login: "local" })]
    })
    expect(applied.summary).toBe("identity plugins changed")
    expect(await asKey()).toBe("no_access")
    await gateway.reload(configWith())
    expect(await asKey()).toBe("ready")
  })

  it("adds and removes an HTTP connector of the proxy", async () => {
    const api = await startHttpUpstream()
    try {
      const proxied = async (id: string) => {
        const response = await fetch(`${gateway.origin}/v1/connectors/${id}/hello`)
        return { status: response.status, body: await response.text() }
      }
      const unknown = await proxied("nosuch")
      // The system tool that lists HTTP connectors follows the reload too.
      const listed = async () => textOf(await client.callTool({ name: "aperture_list_connectors", arguments: {} }))
      await gateway.reload(configWith({ connectors: { api: http({ url: api.origin, allowPrivate: true }) } }))
      expect((await proxied("api")).status).toBe(200)
      expect(api.seen.some((r) => r.url === "/hello")).toBe(true)
      expect(await idsAt()).toEqual(["api", "fx", "steady"])
      expect(await listed()).toContain("/v1/connectors/api")
      await gateway.reload(configWith())
      expect(await proxied("api")).toEqual({ ...unknown, body: unknown.body.replaceAll("nosuch", "api") })
      expect(await idsAt()).toEqual(["fx", "steady"])
      // No HTTP connector left: the tool is gone, as in a gateway started without one.
      await expect(listed()).rejects.toThrow(/Tool aperture_list_connectors not found/)
    } finally {
      await api.close()
    }
  })

  it("judges a proxied request on the connector's new labels", async () => {
    const api = await startHttpUpstream()
    try {
      const status = async () => (await fetch(`${gateway.origin}/v1/connectors/api/hello`)).status
      const withLabels = (labels: Array<string>) =>
        configWith({
          connectors: { api: http({ url: api.origin, allowPrivate: true, labels }) },
          grants: [grant({ src: ["local"], connectors: ["fx/**", "steady/**", "label:open"] })]
        })
      await gateway.reload(withLabels(["open"]))
      expect(await status()).toBe(200)
      await gateway.reload(withLabels(["closed"]))
      expect(await status()).toBe(403)
      await gateway.reload(withLabels(["open"]))
      expect(await status()).toBe(200)
    } finally {
      await gateway.reload(configWith())
      await api.close()
    }
  })

  it("keeps the running address and says a change of it needs a restart", async () => {
    const applied = await gateway.reload({ ...configWith(), server: { allowedHosts: ["gateway.example"] } })
    expect(applied.change.needsRestart).toEqual(["server.allowedHosts"])
    expect(applied.summary).toBe("nothing to apply")
    expect(gateway.captured.text()).toContain("config: server.allowedHosts changed; it needs a restart")
    // Still answering at the running address with the running Host check.
    expect(await idsAt()).toEqual(["fx", "steady"])
  })
})

describe("aperture start follows its config file", () => {
  let dir: string
  let configPath: string
  let cli: CliGateway
  let session: Awaited<ReturnType<typeof connectV1>>["client"]
  const grantsAll = [{ src: ["*"], app: { "tailscale.com/cap/aperture": [{ connectors: ["**"] }] } }]
  const writeConfig = (servers: Record<string, unknown>, grants: unknown = grantsAll) =>
    writeFileSync(configPath, JSON.stringify({ connectors: { servers }, grants }, null, 2))
  const servers = () => ({ fx: { protocol: "mcp", url: fx.url } })
  const cliConnectors = async () =>
    ((await (await fetch(`${cli.origin}/api/connectors`)).json()) as { connectors: Array<{ id: string; status: string; tools: Array<string> }> }).connectors
  const cliSlowCall = () => session.callTool({ name: "fx_slow", arguments: { steps: 10, ms: 200 } })
  const reloads = () => cli.linesWith("config reloaded").length

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "aperture-hot-reload-"))
    configPath = join(dir, "aperture.json")
    writeConfig(servers())
    cli = await startCliGateway(configPath)
    await eventually(async () => (await cliConnectors()).find((c) => c.id === "fx")?.status === "ready", 30_000, "fx ready")
    session = (await connectV1(cli.url)).client
  }, 90_000)

  afterAll(async () => {
    await session?.close()
    await cli?.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it("adds, then removes, a connector written to the file while a call runs", async () => {
    let call = cliSlowCall()
    writeConfig({ ...servers(), fx2: { protocol: "mcp", url: fx2.url } })
    await eventually(async () => (await cliConnectors()).find((c) => c.id === "fx2")?.status === "ready", 20_000, "fx2 ready")
    await eventually(() => cli.linesWith("connectors added: fx2").length === 1, 10_000, "the reload's log line")
    expect((await call as { content: Array<{ text: string }> }).content[0]!.text).toBe("done after 10")

    call = cliSlowCall()
    writeConfig(servers())
    await eventually(async () => (await cliConnectors()).every((c) => c.id !== "fx2"), 20_000, "fx2 gone")
    // Logged once the removed connection has closed.
    await eventually(() => cli.linesWith("connectors removed: fx2").length === 1, 10_000, "the reload's log line")
    expect((await call as { content: Array<{ text: string }> }).content[0]!.text).toBe("done after 10")
    expect((await session.listTools()).tools.map((t) => t.name)).not.toContain("fx2_whoami")
  })

  it("keeps the running config when the file breaks, logging each problem with its path; SIGHUP reads it again", async () => {
    const before = reloads()
    const call = cliSlowCall()
    writeConfig({ ...servers(), broken: { protocol: "carrier-pigeon" } }, [{ src: 7 }])
    await eventually(() => cli.linesWith("config not reloaded").length === 1, 10_000, "the refusal")
    const problems = cli.linesWith("connectors.servers.broken")
    expect(problems.length).toBeGreaterThan(0)
    expect(cli.linesWith("grants.0.src").length).toBeGreaterThan(0)
    expect((await cliConnectors()).map((c) => c.id)).toEqual(["fx"])
    expect((await call as { content: Array<{ text: string }> }).content[0]!.text).toBe("done after 10")
    expect(reloads()).toBe(before)

    // Put back as it was: the same content as running (its hash says so), so nothing is applied;
    // SIGHUP reads it again anyway, and the process (which SIGHUP would end by default) answers.
    writeConfig(servers())
    await new Promise((r) => setTimeout(r, 1000))
    expect(reloads()).toBe(before)
    cli.process.child.kill("SIGHUP")
    await eventually(() => reloads() === before + 1, 10_000, "the reload on SIGHUP")
    expect(cli.linesWith("config reloaded").at(-1)).toContain("nothing to apply")
    expect((await cliConnectors()).find((c) => c.id === "fx")?.status).toBe("ready")
  })

  it("says a change of the listening address needs a restart, and keeps serving where it listens", async () => {
    // (--port, given on the command line, wins over the file's port, so the file's host is changed.)
    writeFileSync(configPath, JSON.stringify({ connectors: { servers: servers() }, grants: grantsAll, server: { host: "0.0.0.0" } }, null, 2))
    await eventually(() => cli.linesWith("server.host changed; it needs a restart").length === 1, 10_000, "the restart notice")
    expect((await cliConnectors()).find((c) => c.id === "fx")?.status).toBe("ready")
  })
})
