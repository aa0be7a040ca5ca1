/**
 * The status page as a dashboard in a real browser (headless Chromium): the viewer sees the
 * connectors and their states, opens a connector's detail (history, tools with schemas), fills
 * the "Try it" form built from the server-everything `echo` tool's input schema, reaching the
 * submit button from the keyboard, and sees the result; an admin then finds that call in the
 * audit trail and their session in the sessions list. Screenshots go to docs/images/dashboard-*.png
 * with `UPDATE_SCREENSHOTS=1` (elsewhere to the temp dir: their clocks differ on every run).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { apiKeys, grant, http, loopback, mcp } from "../src/index.js"
import { launchChromium } from "./helpers/chromium.js"
import { connectV1, eventually, everythingStdio, startGateway } from "./helpers/gateway.js"
import { repoRoot } from "./helpers/processes.js"

const SCREENSHOT_DIR = process.env["UPDATE_SCREENSHOTS"] === "1" ? `${repoRoot}docs/images` : tmpdir()
const ALICE_KEY = "alice-key-0123456789abcdef"

let browser: Browser
let gateway: RunningGateway
let auditDir: string

beforeAll(async () => {
  browser = await launchChromium()
  auditDir = mkdtempSync(join(tmpdir(), "aperture-dashboard-browser-"))
  gateway = await startGateway({
    connectors: {
      everything: everythingStdio({ description: "The MCP reference server (server-everything)" }),
      api: http({ url: "https://api.example.com", description: "REST API" }),
      hidden: http({ url: "https://internal.example.com" })
    },
    // The browser is the loopback caller; Alice (a key) is a plain user who may echo.
    identity: [apiKeys({ keys: { [ALICE_KEY]: { login: "alice" } } }), loopback({ login: "local" })],
    grants: [
      grant({ src: ["local"], role: "admin" }),
      grant({ src: ["local"], connectors: ["everything/**", "api/proxy/**"] }),
      grant({ src: ["alice"], connectors: ["everything/tools/echo"] })
    ],
    audit: { to: { file: join(auditDir, "audit.jsonl") } }
  })
  await eventually(async () => {
    const response = await fetch(`${gateway.origin}/api/connectors`)
    const { connectors } = await response.json() as { connectors: Array<{ id: string; status: string }> }
    return connectors.find((c) => c.id === "everything")?.status === "ready"
  }, 60_000, "everything ready")
  mkdirSync(SCREENSHOT_DIR, { recursive: true })
}, 15 * 60_000)

afterAll(async () => {
  await browser?.close()
  await gateway?.close()
  if (auditDir !== undefined) rmSync(auditDir, { recursive: true, force: true })
})

const openPage = async (): Promise<{ page: Page; errors: Array<string> }> => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const errors: Array<string> = []
  page.on("pageerror", (error) => errors.push(error.message))
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text())
  })
  return { page, errors }
}

describe("the dashboard", () => {
  it("shows connectors and states, a connector's tools, runs echo from the Try it form, and shows the call in the audit trail", async () => {
    // A 2025-era session, for the admins' sessions list.
    const { client, transport } = await connectV1(gateway.url)
    const { page, errors } = await openPage()
    try {
      await page.goto(`${gateway.origin}/?refresh=1000`)
      const status = (id: string) => page.locator(`tr[data-connector="${id}"] .status`)
      await status("everything").and(page.locator("[data-status=ready]")).waitFor({ timeout: 15_000 })
      expect(await status("api").textContent()).toBe("ready")
      // An admin sees every connector in full.
      expect(await status("hidden").textContent()).toBe("ready")
      await page.screenshot({ path: join(SCREENSHOT_DIR, "dashboard-connectors.png"), fullPage: true })

      // The detail: history and tools with their input schemas.
      await page.getByRole("button", { name: "Details of everything" }).click()
      const detail = page.locator("#detail")
      await detail.getByRole("heading", { name: "everything", level: 2 }).waitFor()
      expect(await detail.locator("#history .status").first().textContent()).toBe("ready")
      const echo = detail.locator("article.tool[data-tool=\"everything_echo\"]")
      await echo.waitFor()
      expect(await echo.locator("p").first().textContent()).toMatch(/echo/i)
      await echo.getByText("Input schema").click()
      expect(await echo.locator("pre").textContent()).toContain("\"message\"")
      await detail.evaluate((section) => section.scrollIntoView())
      await page.screenshot({ path: join(SCREENSHOT_DIR, "dashboard-detail.png") })

      // Try it: the form from echo's schema (one required string), submitted from the keyboard.
      await echo.getByRole("button", { name: "Try everything_echo" }).click()
      const form = page.locator("#try-form")
      const message = form.getByLabel("message (required)")
      await message.fill("hello from the dashboard <b>not bold</b>")
      // From the field, Tab goes to the submit button (past the field's hint, which is no stop).
      await message.focus()
      const submit = form.getByRole("button", { name: "Call everything_echo" })
      for (let i = 0; i < 5 && !(await submit.evaluate((b) => b === document.activeElement)); i++) await page.keyboard.press("Tab")
      expect(await submit.evaluate((b) => b === document.activeElement)).toBe(true)
      // The focused submit button shows a visible outline.
      expect(await submit.evaluate((b) => getComputedStyle(b).outlineStyle)).toBe("solid")
      await page.keyboard.press("Enter")
      const result = page.locator("#try-result")
      await result.locator(".outcome").waitFor({ timeout: 15_000 })
      expect(await result.locator(".outcome").getAttribute("data-error")).toBe("false")
      // Upstream text is shown as text: the markup arrives as characters, not as an element.
      expect(await result.locator(".content-text").first().textContent()).toContain("hello from the dashboard <b>not bold</b>")
      expect(await result.locator("b").count()).toBe(0)
      await page.locator("#try").screenshot({ path: join(SCREENSHOT_DIR, "dashboard-try-it.png") })

      // The admin's view: the call in the audit trail (filter by connector and decision), the session.
      const admin = page.locator("#admin")
      await admin.waitFor()
      await page.getByRole("textbox", { name: "Connector", exact: true }).fill("everything")
      await page.getByRole("combobox", { name: "Decision" }).selectOption("allowed")
      await page.getByRole("button", { name: "Filter" }).click()
      const auditRow = page.locator("#audit-rows tr", { hasText: "everything_echo" }).first()
      await auditRow.waitFor({ timeout: 10_000 })
      expect(await auditRow.textContent()).toContain("local (loopback)")
      expect(await auditRow.textContent()).toContain("allowed")
      await page.getByRole("combobox", { name: "Decision" }).selectOption("denied")
      await page.getByRole("button", { name: "Filter" }).click()
      await eventually(async () => (await page.locator("#audit-rows tr", { hasText: "everything_echo" }).count()) === 0, 10_000, "denied filter applied")
      await page.getByRole("combobox", { name: "Decision" }).selectOption("")
      await page.getByRole("button", { name: "Filter" }).click()
      await page.getByRole("button", { name: "Refresh sessions" }).click()
      await page.locator("#session-rows tr", { hasText: "test-v1" }).waitFor({ timeout: 10_000 })
      expect(await page.locator("#session-rows tr", { hasText: "test-v1" }).textContent()).toContain("2025-11-25")
      await page.locator("#admin").screenshot({ path: join(SCREENSHOT_DIR, "dashboard-admin.png") })
      expect(errors).toEqual([])
    } finally {
      await page.close()
      await transport.terminateSession().catch(() => {})
      await client.close()
    }
  }, 120_000)

  it("shows a plain user neither the audit trail nor sessions, and only the tools their grants allow", async () => {
    const { page, errors } = await openPage()
    try {
      // Alice's key on every request of this page, as a front proxy would add it.
      await page.setExtraHTTPHeaders({ "x-api-key": ALICE_KEY })
      await page.goto(`${gateway.origin}/?refresh=1000`)
      await page.locator("tr[data-connector=\"everything\"] .status[data-status=ready]").waitFor({ timeout: 15_000 })
      expect(await page.locator("tr[data-connector=\"hidden\"] .status").textContent()).toBe("no access")
      expect(await page.getByRole("button", { name: "Details of hidden" }).count()).toBe(0)
      await page.getByRole("button", { name: "Details of everything" }).click()
      await page.locator("#detail article.tool").first().waitFor()
      expect(await page.locator("#detail article.tool").evaluateAll((tools) => tools.map((t) => (t as HTMLElement).dataset["tool"])))
        .toEqual(["everything_echo"])
      // Wait for a refresh to have happened: still no admin sections.
      await page.locator("#updated", { hasText: "updated" }).waitFor()
      expect(await page.locator("#admin").isHidden()).toBe(true)
      expect(errors).toEqual([])
    } finally {
      await page.close()
    }
  }, 60_000)
})
