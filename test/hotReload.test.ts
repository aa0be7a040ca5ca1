/**
 * Config hot reload: a new config applied to a running gateway while a 2025-era client holds a
 * session and a slow call runs. The session and the call survive; only connectors whose
 * settings changed are reconnected (the stdio upstream's pid stays the same); grants apply to the
 * next request; the log and `/api/connectors` say what changed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { grant, mcp, stdio } from "../src/config/dsl.js"
import type { UserConfig } from "../src/config/dsl.js"
import { loopback } from "../src/index.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { startCapturingGateway } from "./helpers/capture.js"
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
    const call = slowCall()
    const applied = await gateway.reload(configWith({ grants: [grant({ src: ["local"], connectors: ["fx/**"] })] }))
    expect(applied.summary).toBe("grants changed")
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("steady_pid")
    expect((await errorOf(client.callTool({ name: "steady_pid", arguments: {} }))).code).toBe(-32602)
    expect(textOf(await call)).toBe("done after 10")
    await gateway.reload(configWith())
    expect(await steadyPid()).toBe(pid)
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
