/**
 * Upstreams come and go: the gateway starts before them, survives their death, restarts stdio
 * processes, falls back to legacy SSE, and leaves no process behind.
 */
import { describe, expect, it } from "vitest"
import { grant, mcp, stdio } from "../src/config/dsl.js"
import { connectorsOf, connectV1, connectV2, eventually, everythingStdio, startGateway, statusOf } from "./helpers/gateway.js"
import { everythingSse, freePort, repoRoot, tsNode } from "./helpers/processes.js"

const allowAll = [grant({ src: ["local"], connectors: ["**"] })]
const v2Fixture = `${repoRoot}test/fixtures/v2Upstream.ts`

const toolNames = async (client: { listTools: () => Promise<{ tools: Array<{ name: string }> }> }) =>
  (await client.listTools()).tools.map((t) => t.name)

describe("supervision", () => {
  it("picks up an upstream that starts after the gateway, and one restarted after being killed, without a client reconnect", async () => {
    const port = await freePort()
    const gateway = await startGateway({
      connectors: { everything: everythingStdio(), late: mcp({ url: `http://127.0.0.1:${port}/mcp` }) },
      grants: allowAll
    })
    try {
      await eventually(async () => (await statusOf(gateway, "everything")) === "ready", 30_000, "everything ready")
      expect(await statusOf(gateway, "late")).toBe("down")
      const { error } = (await connectorsOf(gateway)).connectors.find((c) => c.id === "late")!
      expect(error).toBe(`connection refused (127.0.0.1:${port}): nothing is listening there`)

      const client = await connectV2(gateway.url)
      expect(await toolNames(client)).not.toContain("late_whoami")

      let upstream = tsNode(v2Fixture, [String(port), "late"])
      await upstream.waitFor(/\/mcp/)
      await eventually(async () => (await toolNames(client)).includes("late_whoami"), 30_000, "late_whoami listed")
      expect(await client.callTool({ name: "late_whoami", arguments: {} })).toMatchObject({ content: [{ text: "late" }] })

      // Killed mid-run: the other connector keeps serving, the dead one's tools disappear.
      await upstream.kill("SIGKILL")
      await eventually(async () => !(await toolNames(client)).includes("late_whoami"), 30_000, "late_whoami gone")
      expect(await statusOf(gateway, "late")).toBe("down")
      expect(await client.callTool({ name: "everything_echo", arguments: { message: "still" } })).toMatchObject({
        content: [{ text: "Echo: still" }]
      })
      await expect(client.callTool({ name: "late_whoami", arguments: {} })).rejects.toThrow(/not found/)

      // Restarted on the same port: picked up again, same client session.
      upstream = tsNode(v2Fixture, [String(port), "late"])
      await upstream.waitFor(/\/mcp/)
      await eventually(async () => (await toolNames(client)).includes("late_whoami"), 45_000, "late_whoami back")
      expect(await client.callTool({ name: "late_whoami", arguments: {} })).toMatchObject({ content: [{ text: "late" }] })
      await client.close()
      await upstream.kill()
    } finally {
      await gateway.close()
    }
  })

  it("restarts a stdio upstream that dies, and ends it on shutdown (no orphan)", async () => {
    const gateway = await startGateway({
      connectors: {
        proc: stdio({ command: process.execPath, args: ["--import", "tsx", `${repoRoot}test/fixtures/stdioUpstream.ts`], cwd: repoRoot })
      },
      grants: allowAll
    })
    let lastPid = 0
    try {
      const { client } = await connectV1(gateway.url)
      await eventually(async () => (await toolNames(client)).includes("proc_pid"), 30_000, "proc ready")
      const pidOf = async () => Number((await client.callTool({ name: "proc_pid", arguments: {} }) as { content: Array<{ text: string }> }).content[0]!.text)
      const first = await pidOf()
      await client.callTool({ name: "proc_crash", arguments: {} })
      await eventually(async () => {
        try {
          const pid = await pidOf()
          return pid !== first ? pid : undefined
        } catch {
          return undefined
        }
      }, 30_000, "a new process")
      lastPid = await pidOf()
      expect(lastPid).not.toBe(first)
      expect(() => process.kill(first, 0)).toThrow()
      await client.close()
    } finally {
      await gateway.close()
    }
    await eventually(() => {
      try {
        process.kill(lastPid, 0)
        return false
      } catch {
        return true
      }
    }, 10_000, "the stdio process to end")
  })

  it("speaks legacy HTTP+SSE to an upstream that only offers that", async () => {
    const port = await freePort()
    const sse = everythingSse(port)
    await sse.waitFor(/running on port/)
    const gateway = await startGateway({
      connectors: { old: mcp({ url: `http://127.0.0.1:${port}/sse` }) },
      grants: allowAll
    })
    try {
      await eventually(async () => (await statusOf(gateway, "old")) === "ready", 30_000, "sse upstream ready")
      const info = (await (await fetch(`${gateway.origin}/api/connectors`)).json()) as { connectors: Array<{ transport: string }> }
      expect(info.connectors[0]!.transport).toBe("sse")
      const client = await connectV2(gateway.url)
      expect(await client.callTool({ name: "old_echo", arguments: { message: "over sse" } })).toMatchObject({
        content: [{ text: "Echo: over sse" }]
      })
      await client.close()
    } finally {
      await gateway.close()
      await sse.kill()
    }
  })

  it("reports a connector without url as down and serves the others", async () => {
    const gateway = await startGateway({
      connectors: { nourl: mcp({}), everything: everythingStdio() },
      grants: allowAll
    })
    try {
      await eventually(async () => (await statusOf(gateway, "everything")) === "ready", 30_000, "everything ready")
      const nourl = (await connectorsOf(gateway)).connectors.find((c) => c.id === "nourl")!
      expect(nourl).toMatchObject({ status: "down", error: "no url configured" })
    } finally {
      await gateway.close()
    }
  })
})
