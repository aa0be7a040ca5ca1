/**
 * The README's promises about clients and the CLI, checked: the Cursor and Claude Desktop
 * snippets at its top, run as written against a gateway (Claude Desktop's through the pinned
 * `mcp-remote`, as a stdio command), and a CLI page (docs/cli.md) that names every option the CLI has.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant } from "../src/index.js"
import { connectV2, eventually, everythingStdio, startGateway, statusOf } from "./helpers/gateway.js"
import { repoRoot, spawnProcess } from "./helpers/processes.js"

const readme = readFileSync(join(repoRoot, "README.md"), "utf8")
const DEMO_URL = "http://127.0.0.1:8080/v1/mcp"

/** The `mcpServers.aperture` entry of the JSON snippet in the README's bullet for `client`. */
const snippetFor = (client: string): Record<string, unknown> => {
  const bullet = readme.split("\n- ").find((part) => part.startsWith(`**${client}**`))
  const json = bullet === undefined ? undefined : /```json\n([\s\S]*?)```/.exec(bullet)?.[1]
  if (json === undefined) throw new Error(`no JSON snippet for ${client} in README.md`)
  return (JSON.parse(json) as { mcpServers: { aperture: Record<string, unknown> } }).mcpServers.aperture
}

let gateway: RunningGateway
beforeAll(async () => {
  gateway = await startGateway({ connectors: { everything: everythingStdio() }, grants: [grant({ src: ["local"], connectors: ["**"] })] })
  await eventually(async () => (await statusOf(gateway, "everything")) === "ready", 30_000, "everything ready")
})
afterAll(async () => {
  await gateway?.close()
})

describe("README client snippets", () => {
  it("Claude Code's command names the HTTP transport and the endpoint", () => {
    expect(readme).toContain(`claude mcp add --transport http aperture ${DEMO_URL}`)
  })

  it("Cursor's mcp.json entry is a URL a streamable HTTP client can use", async () => {
    const entry = snippetFor("Cursor")
    expect(entry).toEqual({ url: DEMO_URL })
    const client = await connectV2(String(entry["url"]).replace(DEMO_URL, gateway.url))
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("everything_echo")
    await client.close()
  })

  it("Claude Desktop's entry is a stdio command (mcp-remote) that reaches the gateway", async () => {
    const entry = snippetFor("Claude Desktop") as { command: string; args: Array<string> }
    expect(entry).not.toHaveProperty("url") // Claude Desktop's config file takes stdio commands only
    expect(entry.command).toBe("npx")
    const configDir = mkdtempSync(join(tmpdir(), "aperture-mcp-remote-"))
    // `npx -y mcp-remote` from the repository resolves the pinned devDependency, as a user's
    // would fetch it: run as written, with the test gateway's URL.
    const transport = new StdioClientTransport({
      command: "npx",
      args: entry.args.map((arg) => (arg === DEMO_URL ? gateway.url : arg)),
      cwd: repoRoot,
      env: { ...(process.env as Record<string, string>), MCP_REMOTE_CONFIG_DIR: configDir },
      stderr: "pipe"
    })
    const client = new V1Client({ name: "claude-desktop-like", version: "1" })
    try {
      await client.connect(transport)
      expect(await client.callTool({ name: "everything_echo", arguments: { message: "via mcp-remote" } })).toMatchObject({
        content: [{ type: "text", text: "Echo: via mcp-remote" }]
      })
    } finally {
      await client.close()
      rmSync(configDir, { recursive: true, force: true })
    }
  }, 60_000)
})

describe("docs/cli.md", () => {
  it("names every option `aperture --help` and each command's --help list", async () => {
    const options = new Set<string>()
    for (const command of [[], ["start"], ["check"], ["init"]]) {
      const help = spawnProcess(process.execPath, [join(repoRoot, "bin/aperture.js"), ...command, "--help"])
      await new Promise((resolve) => help.child.on("exit", resolve))
      for (const option of help.output().match(/--[a-z][a-z-]+/g) ?? []) options.add(option)
    }
    for (const everywhere of ["--help", "--version"]) options.delete(everywhere)
    expect(options.size).toBeGreaterThan(5)
    const cli = readFileSync(join(repoRoot, "docs/cli.md"), "utf8")
    for (const option of options) expect(cli, option).toContain(option)
  })
})
