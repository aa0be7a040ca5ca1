/**
 * The `aperture` command as users run it: the bundled CLI (`npm test` builds first), its exit
 * codes, `check` output without secrets, serving the demo config, and draining on SIGTERM.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connectV2, eventually } from "./helpers/gateway.js"
import { freePort, repoRoot, spawnProcess } from "./helpers/processes.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { startSignedUpstream } from "../examples/custom-auth-plugin/signedUpstream.js"

const bin = join(repoRoot, "bin/aperture.js")
const dir = mkdtempSync(join(tmpdir(), "aperture-cli-"))
const file = (name: string, content: string) => {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

/** Runs the CLI to completion. */
const run = async (args: ReadonlyArray<string>, env: Record<string, string> = {}, cwd = repoRoot) => {
  const child = spawnProcess(process.execPath, [bin, ...args], env, cwd)
  const code = await new Promise<number | null>((resolve) => child.child.on("exit", (c) => resolve(c)))
  return { code, output: child.output() }
}

const SECRET_ENV = "tok-env-5b1f0c9e"
const SECRET_INLINE = "tok-inline-77aa31d2"

let fx: V2Upstream
beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
})
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await fx?.close()
})

describe("aperture check", () => {
  it("validates the demo config and prints connectors, prefixes, grants and warnings", async () => {
    const { code, output } = await run(["check"])
    expect(code).toBe(0)
    expect(output).toContain("aperture.config.ts: valid")
    expect(output).toMatch(/everything\s+stdio/)
    expect(output).toContain("everything_<name>")
    expect(output).toContain("isolation: caller (an upstream process per caller)")
    expect(output).toMatch(/grants \(1, deny by default\):\n\s+0\. src local -> \*\*/)
    expect(output).toContain("warnings (0)")
  })

  it("never prints a secret, inline or from the environment", async () => {
    const config = file("secrets.config.ts", `
      import { defineConfig, mcp, http, bearer, basic, env, grant } from "aperture"
      export default defineConfig({
        connectors: {
          a: mcp({ url: "https://a.example.com/mcp", auth: bearer({ secret: env("A_TOKEN") }) }),
          b: http({ url: "https://b.example.com", auth: basic({ username: "u", password: "${SECRET_INLINE}" }) }),
          c: mcp({}),
        },
        grants: [grant({ src: ["local"], connectors: ["a/**", "b/**"] })],
      })`)
    const { code, output } = await run(["check", "--config", config], { A_TOKEN: SECRET_ENV })
    expect(code).toBe(0)
    expect(output).toContain("bearer (secret: env A_TOKEN)")
    expect(output).toContain("connectors.c.url: no url configured")
    expect(output).not.toContain(SECRET_ENV)
    expect(output).not.toContain(SECRET_INLINE)
  })

  it("exits 1 listing every problem with its path", async () => {
    const config = file("bad.config.ts", `
      import { defineConfig, mcp, bearer, grant } from "aperture"
      export default defineConfig({
        connectors: { "my-db": mcp({ url: "https://x/mcp" }), github: mcp({ url: "https://x/mcp", auth: bearer({ secert: "x" } as any) }) },
        grants: [grant({ src: ["local"], connectors: ["github/tool/*"] })],
      })`)
    const { code, output } = await run(["check", "--config", config])
    expect(code).toBe(1)
    expect(output).toMatch(/^ {2}connectors\.my-db: connector ID must match/m)
    expect(output).toMatch(/^ {2}connectors\.github\.auth\.secert: unexpected field/m)
    expect(output).toMatch(/^ {2}grants\.0\.connectors\.0: unknown category "tool"/m)
  })

  it("exits 1 for a syntax error, a throw or a missing file, naming the file and the line", async () => {
    const broken = file("broken.config.ts", "export default {\n  connectors: {\n")
    const syntax = await run(["check", "--config", broken])
    expect(syntax.code).toBe(1)
    expect(syntax.output).toContain("broken.config.ts")
    expect(syntax.output).toMatch(/\(at [^)]*broken\.config\.ts:\d+:\d+\)/)
    const throwing = file("throwing.config.mjs", 'import { defineConfig } from "aperture"\nthrow new Error("no config today")\n')
    const thrown = await run(["check", "--config", throwing])
    expect(thrown.code).toBe(1)
    expect(thrown.output).toMatch(/no config today \(at [^)]*throwing\.config\.mjs:2:\d+\)/)
    const missing = await run(["check", "--config", join(dir, "nope.config.ts")])
    expect(missing.code).toBe(1)
    expect(missing.output).toMatch(/no config file found/)
  })

  it("gives a .mjs config the CLI's own aperture, even where Node would resolve another copy", async () => {
    // Inside this package, Node resolves `aperture` to dist/src (the library entry); the CLI runs
    // the bundle, and the config must share its modules.
    const inside = mkdtempSync(join(repoRoot, "test", ".tmp-"))
    try {
      const config = join(inside, "aperture.config.mjs")
      writeFileSync(config, 'import { defineConfig, grant, loopback } from "aperture"\nexport default defineConfig({ identity: [loopback({ login: "local" })], grants: [grant({ src: ["local"], connectors: ["**"] })] })\n')
      const checked = await run(["check", "--config", config], { JITI_DEBUG: "1" })
      expect(checked.code).toBe(0)
      expect(checked.output).toMatch(/dist\/bundle\/index\.mjs/)
      expect(checked.output).not.toMatch(/dist\/src\/index\.js/)
    } finally {
      rmSync(inside, { recursive: true, force: true })
    }
  })

  it("loads the original's JSON shape", async () => {
    const config = file("aperture.json", JSON.stringify({
      connectors: { servers: { snowflake: { protocol: "mcp", url: "https://s.example.com/mcp", auth: { type: "bearer_token", secret: SECRET_INLINE } } } },
      grants: [{ src: ["*"], app: { "tailscale.com/cap/aperture": [{ connectors: ["snowflake/**"] }, { role: "admin" }, { models: "*" }] } }]
    }))
    const { code, output } = await run(["check", "--config", config])
    expect(code).toBe(0)
    expect(output).toMatch(/snowflake\s+mcp\s+https:\/\/s\.example\.com\/mcp/)
    // The original's admin role applies here too; its LLM-gateway fields load with a warning.
    expect(output).toContain("0. src * -> snowflake/** (role admin)")
    expect(output).toContain("admin: grants 0")
    expect(output).toContain("warnings (1):\n  grants.0.app[\"tailscale.com/cap/aperture\"].2.models: ignored: model access belongs")
    expect(output).not.toContain(SECRET_INLINE)
  })

  it("check --as prints what that caller may reach, and lists identity plugins without their keys", async () => {
    const config = file("as.config.ts", `
      import { defineConfig, mcp, http, grant, apiKeys, jwt, loopback, env } from "aperture"
      export default defineConfig({
        connectors: {
          github: mcp({ url: "https://gh.example.com/mcp" }),
          analytics: mcp({ url: "https://an.example.com/mcp", labels: ["data"] }),
          api: http({ url: "https://api.example.com" }),
        },
        identity: [
          apiKeys({ keys: { "${SECRET_INLINE}-0123456789": { login: "ci", tags: ["ci"] } } }),
          apiKeys({ keys: [{ key: env("CI_KEY"), login: "deploy" }] }),
          jwt({ issuer: "https://idp.example.com", audience: "https://aperture.example.com/v1/mcp" }),
          loopback({ login: "local" }),
        ],
        grants: [
          grant({ src: ["alice"], connectors: ["github/tools/list_repos", "api/proxy/repos/**"] }),
          grant({ src: ["group:analysts"], connectors: ["label:data", "github/resources/**"] }),
          grant({ src: ["tag:ci"], connectors: ["**"] }),
        ],
      })`)
    const alice = await run(["check", "--config", config, "--as", "alice", "--groups", "analysts,eng"], { CI_KEY: SECRET_ENV })
    expect(alice.code).toBe(0)
    expect(alice.output).toContain("as alice (groups analysts, eng; no tags):")
    expect(alice.output).toContain("grants: 0 (src alice); 1 (src group:analysts)")
    expect(alice.output).toMatch(/^ {2}github\s+tools\/list_repos \(grant 0: github\/tools\/list_repos\), resources\/\*\* \(grant 1: github\/resources\/\*\*\)$/m)
    expect(alice.output).toMatch(/^ {2}analytics\s+everything \(grant 1: label:data\)$/m)
    expect(alice.output).toMatch(/^ {2}api\s+proxy\/repos\/\*\* \(grant 0: api\/proxy\/repos\/\*\*\)$/m)
    expect(alice.output).toContain("apiKeys (1 key: ci; values hidden)")
    expect(alice.output).toContain("jwt (issuer https://idp.example.com, audience https://aperture.example.com/v1/mcp)")
    expect(alice.output).not.toContain(SECRET_INLINE)
    expect(alice.output).not.toContain(SECRET_ENV)

    const bob = await run(["check", "--config", config, "--as", "bob"], { CI_KEY: SECRET_ENV })
    expect(bob.output).toContain("no grant names this caller: nothing is visible or callable (deny by default)")
    const ci = await run(["check", "--config", config, "--as", "runner", "--tags", "ci"], { CI_KEY: SECRET_ENV })
    expect(ci.output).toMatch(/^ {2}github\s+everything \(grant 2: \*\*\)$/m)

    expect((await run(["check", "--config", config, "--groups", "analysts"])).code).toBe(2)
  })

  it("--help lists every command, and each command's --help every option with an example", async () => {
    const main = await run(["--help"])
    expect(main.code).toBe(0)
    for (const command of ["start", "check", "init"]) expect(main.output).toMatch(new RegExp(`^  ${command} +\\S`, "m"))
    expect(main.output).not.toContain("A user-defined piece of text")
    const options = { start: ["--config", "--host", "--port", "--log-level"], check: ["--config", "--as", "--groups", "--tags"], init: [] }
    for (const [command, expected] of Object.entries(options)) {
      for (const asked of [[command, "--help"], ["help", command], [command, "-h"]]) {
        const help = await run(asked)
        expect(help.code, asked.join(" ")).toBe(0)
        expect(help.output).toContain(`Usage: aperture ${command}`)
        for (const option of expected) expect(help.output, `${command}: ${option}`).toContain(option)
        expect(help.output).toMatch(/Examples:\n {2}\S/)
        expect(help.output).not.toContain("A user-defined piece of text")
        for (const line of help.output.split("\n")) expect(line.length, line).toBeLessThanOrEqual(80)
      }
    }
  })

  it("exits 2 on usage errors and 0 for --help", async () => {
    expect((await run(["check", "--bogus"])).code).toBe(2)
    expect((await run(["start", "--port", "abc"])).code).toBe(2)
    expect((await run(["frobnicate"])).code).toBe(2)
    expect((await run(["--help"])).code).toBe(0)
  })

  it("prints help and usage errors without ANSI styling when the output is not a terminal", async () => {
    const help = await run(["--help"])
    expect(help.output).toContain("Usage: aperture <command> [options]")
    expect(help.output).toContain("--log-level")
    expect(help.output).not.toContain("\u001b[")
    const usage = await run(["check", "--bogus"])
    expect(usage.output).toContain("--bogus")
    expect(usage.output).not.toContain("\u001b[")
  })

  it("on Node 22 keeps V8's compiled code, and the transpiled config, in a private XDG cache", async () => {
    // The machines run Node 20, which has no compile cache; Node 22 comes from the registry, as
    // the conformance suite's does.
    const cache = mkdtempSync(join(tmpdir(), "aperture-xdg-"))
    const child = spawnProcess(
      "npx",
      ["-y", "-p", "node@22", "--", "node", bin, "check", "--config", "aperture.config.ts"],
      { XDG_CACHE_HOME: cache }
    )
    const code = await new Promise<number | null>((resolve) => child.child.on("exit", (c) => resolve(c)))
    expect(code, child.output()).toBe(0)
    expect(child.output()).toContain("everything")
    expect(readdirSync(join(cache, "aperture", "node-compile-cache")).length).toBeGreaterThan(0)
    expect(readdirSync(join(cache, "aperture", "jiti")).some((name) => name.includes("aperture.config"))).toBe(true)
    expect(statSync(join(cache, "aperture")).mode & 0o777).toBe(0o700)
    rmSync(cache, { recursive: true, force: true })
  }, 120_000)
})

describe("aperture start", () => {
  it("says which port is in use and exits 1, without a stack, when the port is taken", async () => {
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve))
    const port = (holder.address() as AddressInfo).port
    try {
      const { code, output } = await run(["start", "--port", String(port)])
      expect(code).toBe(1)
      expect(output.trim()).toBe(`aperture: port ${port} on 127.0.0.1 is in use; pass --port`)
    } finally {
      await new Promise((resolve) => holder.close(resolve))
    }
  })

  it("serves the demo config: a client sees everything_echo and can call it; SIGTERM exits 0", async () => {
    const port = await freePort()
    const gateway = spawnProcess(process.execPath, [bin, "start", "--port", String(port)])
    try {
      await gateway.waitFor(/connector everything ready/, 30_000)
      const client = await connectV2(`http://127.0.0.1:${port}/v1/mcp`)
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("everything_echo")
      expect(await client.callTool({ name: "everything_echo", arguments: { message: "demo" } })).toMatchObject({
        content: [{ type: "text", text: "Echo: demo" }]
      })
      await client.close()
    } finally {
      expect(await gateway.kill("SIGTERM")).toBe(0)
    }
  })

  it("runs a config whose custom auth plugin imports effect itself (one effect and one aperture for config and CLI)", async () => {
    // The CLI runs bundled (scripts/bundle.mjs); the plugin's Schema, Effect and Redacted values
    // must work in the gateway's runtime, and its `aperture` be the CLI's own.
    const upstream = await startSignedUpstream({ keys: new Map([["example", "cli-hmac-secret"]]) })
    const port = await freePort()
    const gateway = spawnProcess(
      process.execPath,
      [bin, "start", "--config", "examples/custom-auth-plugin/aperture.config.ts", "--port", String(port)],
      { HMAC_SECRET: "cli-hmac-secret", SIGNED_UPSTREAM_URL: upstream.url }
    )
    try {
      await gateway.waitFor(/connector signed ready/, 30_000)
      const client = await connectV2(`http://127.0.0.1:${port}/v1/mcp`)
      const tools = (await client.listTools()).tools.map((t) => t.name)
      expect(tools.length).toBeGreaterThan(0)
      expect(tools.every((name) => name.startsWith("signed_"))).toBe(true)
      await client.close()
    } finally {
      expect(await gateway.kill("SIGTERM")).toBe(0)
      await upstream.close()
    }
  })

  it("writes audit lines to stdout when asked, one JSON object per line among the log", async () => {
    const port = await freePort()
    const config = file("audit.config.ts", `
      import { defineConfig, mcp, grant } from "aperture"
      export default defineConfig({
        connectors: { fx: mcp({ url: "${fx.url}" }) },
        grants: [grant({ src: ["local"], connectors: ["fx/tools/echo"] })],
        audit: { to: "stdout" },
      })`)
    const gateway = spawnProcess(process.execPath, [bin, "start", "--config", config, "--port", String(port)])
    try {
      await gateway.waitFor(/connector fx ready/, 30_000)
      const client = await connectV2(`http://127.0.0.1:${port}/v1/mcp`)
      await client.callTool({ name: "fx_echo", arguments: { message: "audited" } })
      await client.callTool({ name: "fx_whoami", arguments: {} }).catch(() => undefined)
      await client.close()
      await gateway.waitFor(/"exposed":"fx_whoami"/, 10_000)
    } finally {
      await gateway.kill("SIGTERM")
    }
    const lines = gateway.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.map((l) => [l["login"], l["exposed"], l["decision"], l["outcome"]])).toEqual([
      ["local", "fx_echo", "allowed", "ok"],
      ["local", "fx_whoami", "denied", "denied"]
    ])
    expect(gateway.output()).not.toContain("audited") // arguments are left out by default
  })

  it("finishes a call in flight before exiting on SIGTERM", async () => {
    const port = await freePort()
    const config = file("drain.config.ts", `
      import { defineConfig, mcp, grant } from "aperture"
      export default defineConfig({
        connectors: { fx: mcp({ url: "${fx.url}" }) },
        grants: [grant({ src: ["local"], connectors: ["**"] })],
      })`)
    const gateway = spawnProcess(process.execPath, [bin, "start", "--config", config, "--port", String(port)])
    await gateway.waitFor(/connector fx ready/, 30_000)
    const client = await connectV2(`http://127.0.0.1:${port}/v1/mcp`)
    const call = client.callTool({ name: "fx_slow", arguments: { steps: 5, ms: 200 } })
    await new Promise((r) => setTimeout(r, 300))
    const exited = gateway.kill("SIGTERM")
    expect(await call).toMatchObject({ content: [{ text: "done after 5" }] })
    expect(await exited).toBe(0)
  })

  it("logs a connector's failure once, not on every retry, and never its secret", async () => {
    const port = await freePort()
    const dead = await freePort()
    const config = file("down.config.ts", `
      import { defineConfig, mcp, bearer, env, grant } from "aperture"
      export default defineConfig({
        connectors: { dead: mcp({ url: "http://127.0.0.1:${dead}/mcp", auth: bearer({ secret: env("DEAD_TOKEN") }) }) },
        grants: [grant({ src: ["local"], connectors: ["**"] })],
      })`)
    const gateway = spawnProcess(process.execPath, [bin, "start", "--config", config, "--port", String(port)], { DEAD_TOKEN: SECRET_ENV })
    try {
      await gateway.waitFor(/connector dead down/, 30_000)
      // Backoff retries at ~0.2, 0.6, 1.4, 3 s: several attempts, one log line.
      await new Promise((r) => setTimeout(r, 3500))
      const status = await eventually(async () => {
        const response = await fetch(`http://127.0.0.1:${port}/api/connectors`)
        return ((await response.json()) as { connectors: Array<{ status: string }> }).connectors[0]?.status
      })
      expect(status).toBe("down")
    } finally {
      await gateway.kill("SIGTERM")
    }
    expect(gateway.output().match(/connector dead down/g)).toHaveLength(1)
    expect(gateway.output()).not.toContain(SECRET_ENV)
  })
})
