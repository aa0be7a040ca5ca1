/**
 * A per-user OAuth connector connected from the status page in a real browser (headless
 * Chromium), against a real authorization server (oidc-provider's development login and consent
 * pages) and an upstream that introspects each call's token: Alice (the loopback viewer) sees
 * `needs_auth` and a Connect button, clicks it, signs in and consents at the provider, lands on the
 * gateway's callback page, goes back to the status page and finds the connector ready with its
 * tool; Disconnect, pressed from the keyboard, puts her back to `needs_auth`. The same journey runs
 * for a dynamic connector (`userOAuth.dynamic()`, `oauth2_dcr`): the gateway discovers the
 * provider from the upstream's protected resource metadata and registers its own client.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Aperture, type RunningGateway } from "../src/Aperture.js"
import { grant, loopback, mcp, userOAuth } from "../src/index.js"
import { type OAuthCodeServer, registerApp, startOAuthCodeServer } from "./fixtures/oauthCodeServer.js"
import { startUserTokenUpstream, type UserTokenUpstream } from "./fixtures/userTokenUpstream.js"
import { launchChromium } from "./helpers/chromium.js"
import { freePort, repoRoot } from "./helpers/processes.js"

/**
 * The docs' picture of the status page: rewritten with `UPDATE_SCREENSHOTS=1` (its clock differs
 * on every run, so an ordinary run leaves the committed one alone and writes to the temp dir).
 */
const SCREENSHOT_DIR = process.env["UPDATE_SCREENSHOTS"] === "1" ? `${repoRoot}docs/images` : tmpdir()

let browser: Browser
let provider: OAuthCodeServer
let upstream: UserTokenUpstream
let gateway: RunningGateway
let origin: string
let stateDir: string

beforeAll(async () => {
  browser = await launchChromium()
  provider = await startOAuthCodeServer()
  upstream = await startUserTokenUpstream({ issuer: provider.issuer, introspector: provider.clients.confidential })
  const port = await freePort()
  origin = `http://127.0.0.1:${port}`
  stateDir = mkdtempSync(join(tmpdir(), "aperture-user-oauth-browser-"))
  // The OAuth app an operator registers at the provider, with the gateway's callback.
  const client = await registerApp(provider, `${origin}/aperture/auth/gh/callback`)
  gateway = await Aperture.start({
    server: { port, publicUrl: origin, stateDir },
    secretKey: "the browser test's secret key, 32 characters or more",
    identity: [loopback({ login: "alice" })],
    connectors: {
      gh: mcp({
        url: upstream.url,
        description: "GitHub-style MCP server, each user with their own account",
        auth: userOAuth({
          clientId: client.id,
          clientSecret: client.secret!,
          authorizationUrl: provider.authorizationUrl,
          tokenUrl: provider.tokenUrl,
          scopes: ["openid", "offline_access", "read"]
        })
      }),
      // No client registered by anyone: discovered (RFC 9728 → RFC 8414) and registered (RFC 7591) on connect.
      dyn: mcp({ url: upstream.url, description: "MCP server with dynamic client registration", auth: userOAuth.dynamic() })
    },
    grants: [
      grant({ src: ["alice"], connectors: ["gh/**", "dyn/**"] }),
      // Someone else is admin, so Alice sees the page as a user.
      grant({ src: ["ops"], role: "admin" })
    ]
  })
}, 15 * 60_000)

afterAll(async () => {
  await browser?.close()
  await gateway?.close()
  await upstream?.close()
  await provider?.close()
  if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true })
})

/** A browser page that collects the gateway's page errors (the provider's pages are not ours). */
const openPage = async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 360 } })
  // The gateway's pages run under their Content-Security-Policy without errors.
  const errors: Array<string> = []
  page.on("pageerror", (error) => {
    if (page.url().startsWith(origin)) errors.push(error.message)
  })
  page.on("console", (message) => {
    const where = message.location().url
    // The callback page (no CSP) lets the browser ask for /favicon.ico, which the gateway has not.
    if (message.type() === "error" && where.startsWith(origin) && where !== `${origin}/favicon.ico`) {
      errors.push(`${message.text()} (${where})`)
    }
  })
  return { page, errors }
}

describe("the status page's Connect button", () => {
  it("runs the per-user OAuth flow in the browser: needs_auth → provider login and consent → callback → ready with its tool", async () => {
    const { page, errors } = await openPage()
    const row = page.locator("tr[data-connector=\"gh\"]")
    const status = row.locator(".status")

    await page.goto(`${origin}/?refresh=500`)
    await status.and(page.locator("[data-status=needs_auth]")).waitFor({ timeout: 10_000 })
    expect(await status.textContent()).toBe("needs auth")
    expect(await row.locator(".error").textContent()).toContain("/api/connectors/gh/connect")
    expect(await row.locator(".tools").textContent()).toBe("")
    const connect = page.getByRole("button", { name: "Connect gh" })
    expect(await connect.textContent()).toBe("Connect")
    await page.screenshot({ path: join(tmpdir(), "aperture-status-needs-auth.png"), fullPage: true })

    // To the provider: its development sign-in page takes any login and password.
    await connect.click()
    await page.waitForURL((url) => url.href.startsWith(`${provider.issuer}/interaction/`), { timeout: 10_000 })
    await page.locator("input[name=login]").fill("alice")
    await page.locator("input[name=password]").fill("any")
    await page.getByRole("button", { name: "Sign-in" }).click()
    await page.getByRole("button", { name: "Continue" }).click({ timeout: 10_000 })

    // Back at the gateway's callback: the code exchanged, Alice's tokens kept.
    await page.waitForURL((url) => url.href.startsWith(`${origin}/aperture/auth/gh/callback?`), { timeout: 10_000 })
    // (The page's h1 carries role="status", so it is found as an element, not as a heading.)
    expect(await page.locator("h1").textContent()).toBe("Connected gh")
    await page.getByRole("link", { name: "Back to Aperture" }).click()
    await page.waitForURL(`${origin}/`)

    await status.and(page.locator("[data-status=ready]")).waitFor({ timeout: 15_000 })
    await row.locator(".tools", { hasText: "gh_whoami" }).waitFor({ timeout: 10_000 })
    expect(await row.locator(".tools").textContent()).toBe("gh_whoami")
    expect(await row.locator(".error").textContent()).toBe("")
    // The gateway read the connector's lists with Alice's own token.
    expect(upstream.callers).toContain("alice")
    const disconnect = page.getByRole("button", { name: "Disconnect gh" })
    expect(await disconnect.textContent()).toBe("Disconnect")
    mkdirSync(SCREENSHOT_DIR, { recursive: true })
    await page.screenshot({ path: join(SCREENSHOT_DIR, "status-page-user-oauth.png"), fullPage: true })

    // Disconnect from the keyboard: a real button takes focus and Enter.
    await disconnect.focus()
    await page.keyboard.press("Enter")
    await status.and(page.locator("[data-status=needs_auth]")).waitFor({ timeout: 10_000 })
    expect(await page.getByRole("button", { name: "Connect gh" }).isVisible()).toBe(true)
    expect(errors).toEqual([])
    await page.close()
  }, 60_000)

  it("runs the flow for a dynamic connector too: discovery and registration on Connect → provider → callback → ready (oauth2_dcr)", async () => {
    const { page, errors } = await openPage()
    const row = page.locator("tr[data-connector=\"dyn\"]")
    const status = row.locator(".status")
    const callsBefore = upstream.callers.length

    await page.goto(`${origin}/?refresh=500`)
    await status.and(page.locator("[data-status=needs_auth]")).waitFor({ timeout: 10_000 })
    expect(await row.locator(".tools").textContent()).toBe("")

    await page.getByRole("button", { name: "Connect dyn" }).click()
    await page.waitForURL((url) => url.href.startsWith(`${provider.issuer}/interaction/`), { timeout: 10_000 })
    // The browser may still hold the provider session from the first test: then it asks for consent only.
    const login = page.locator("input[name=login]")
    const consent = page.getByRole("button", { name: "Continue" })
    await login.or(consent).first().waitFor({ timeout: 10_000 })
    if (await login.isVisible()) {
      await login.fill("alice")
      await page.locator("input[name=password]").fill("any")
      await page.getByRole("button", { name: "Sign-in" }).click()
    }
    // The gateway's client is a new one at the provider, so consent is asked either way.
    await consent.click({ timeout: 10_000 })

    await page.waitForURL((url) => url.href.startsWith(`${origin}/aperture/auth/dyn/callback?`), { timeout: 10_000 })
    expect(await page.locator("h1").textContent()).toBe("Connected dyn")
    await page.getByRole("link", { name: "Back to Aperture" }).click()
    await page.waitForURL(`${origin}/`)

    await status.and(page.locator("[data-status=ready]")).waitFor({ timeout: 15_000 })
    await row.locator(".tools", { hasText: "dyn_whoami" }).waitFor({ timeout: 10_000 })
    expect(await row.locator(".tools").textContent()).toBe("dyn_whoami")
    expect(await row.locator(".error").textContent()).toBe("")
    expect(await page.getByRole("button", { name: "Disconnect dyn" }).isVisible()).toBe(true)
    // The gateway read dyn's lists with Alice's own token, got from its registered client.
    expect(upstream.callers.slice(callsBefore)).toContain("alice")

    // The API, as Alice (the loopback viewer): a dynamic connector, ready for her.
    const api = await fetch(`${origin}/api/connectors`)
    expect(api.status).toBe(200)
    const { connectors } = await api.json() as { connectors: Array<{ id: string; auth_type: string | null; status: string; tools: Array<unknown> }> }
    expect(connectors.find((c) => c.id === "dyn")).toMatchObject({ auth_type: "oauth2_dcr", status: "ready" })
    expect(errors).toEqual([])
    await page.close()
  }, 60_000)
})
