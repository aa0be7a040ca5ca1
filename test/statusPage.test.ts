/**
 * The status page in a real browser (headless Chromium): it renders the connectors the viewer
 * sees with their state and the tools the viewer may use, and shows a connector going from
 * `ready` to `down` when its upstream process is killed, without a reload.
 */
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, http, mcp } from "../src/index.js"
import { launchChromium } from "./helpers/chromium.js"
import { connectorsOf, eventually, startGateway } from "./helpers/gateway.js"
import { freePort, repoRoot, type Spawned, tsNode } from "./helpers/processes.js"

let browser: Browser
let gateway: RunningGateway
let upstream: Spawned

beforeAll(async () => {
  // Installing Debian's chromium on a clean machine can take minutes.
  browser = await launchChromium()
  const port = await freePort()
  upstream = tsNode(`${repoRoot}test/fixtures/v2Upstream.ts`, [String(port), "fx"])
  await upstream.waitFor(/\/mcp/)
  gateway = await startGateway({
    connectors: {
      fx: mcp({ url: `http://127.0.0.1:${port}/mcp`, description: "fixture MCP server" }),
      github: http({ url: "https://api.github.com", description: "GitHub REST API" }),
      hidden: http({ url: "https://internal.example.com" })
    },
    grants: [
      grant({ src: ["local"], connectors: ["fx/tools/echo", "fx/tools/whoami", "github/proxy/**"] }),
      // Someone else is admin, so the loopback viewer sees as a user (no_access rows included).
      grant({ src: ["ops"], role: "admin" })
    ]
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "fx")?.status === "ready", 30_000)
}, 15 * 60_000)

afterAll(async () => {
  await browser?.close()
  await gateway?.close()
  await upstream?.kill("SIGKILL")
})

describe("status page", () => {
  it("renders the viewer's connectors and follows fx from ready to down when its upstream dies", async () => {
    const page = await browser.newPage()
    const errors: Array<string> = []
    page.on("pageerror", (error) => errors.push(error.message))
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text())
    })
    const response = await page.goto(`${gateway.origin}/?refresh=500`)
    expect(response?.status()).toBe(200)
    expect(await page.title()).toBe("Aperture")

    const status = (id: string) => page.locator(`tr[data-connector="${id}"] .status`)
    await status("fx").and(page.locator("[data-status=ready]")).waitFor({ timeout: 30_000 })
    expect(await status("fx").textContent()).toBe("ready")
    const fxTools = await page.locator("tr[data-connector=\"fx\"] .tools").textContent()
    expect(fxTools?.split(", ").sort()).toEqual(["fx_echo", "fx_whoami"])
    expect(await status("github").textContent()).toBe("ready")
    expect(await page.locator("tr[data-connector=\"github\"] .tools").textContent()).toBe("/v1/connectors/github/")
    expect(await status("hidden").textContent()).toBe("no access")
    expect(await page.locator("tr[data-connector=\"hidden\"] .tools").textContent()).toBe("")
    await page.screenshot({ path: join(tmpdir(), "aperture-status-ready.png"), fullPage: true })

    await upstream.kill("SIGKILL")
    await status("fx").and(page.locator("[data-status=down]")).waitFor({ timeout: 45_000 })
    expect(await status("fx").textContent()).toBe("down")
    expect(await page.locator("tr[data-connector=\"fx\"] .error").textContent()).not.toBe("")
    expect(await page.locator("tr[data-connector=\"fx\"] .tools").textContent()).toBe("")
    await page.screenshot({ path: join(tmpdir(), "aperture-status-down.png"), fullPage: true })
    // The page's script and style run under its Content-Security-Policy without violations.
    expect(errors).toEqual([])
    await page.close()
  }, 120_000)

  it("is served at /ui too, with a Content-Security-Policy", async () => {
    const response = await fetch(`${gateway.origin}/ui`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/html")
    expect(response.headers.get("content-security-policy")).toContain("default-src 'none'")
  })
})
