/**
 * Headless Chromium for page tests: Debian's `chromium` package (installed here when missing,
 * so a clean CI machine gets it from `npm test` itself) driven by playwright-core, which never
 * downloads a browser of its own.
 */
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { promisify } from "node:util"
import { type Browser, chromium } from "playwright-core"

const CHROMIUM = "/usr/bin/chromium"
const run = promisify(execFile)

/** Installs Debian's chromium when it is not there yet (needs root, as on CI and these machines). */
export const ensureChromium = async (): Promise<string> => {
  if (existsSync(CHROMIUM)) return CHROMIUM
  if (process.getuid?.() !== 0) {
    throw new Error(`${CHROMIUM} is missing; install it with: sudo apt-get update && sudo apt-get install -y chromium`)
  }
  const apt = { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, maxBuffer: 64 * 1024 * 1024 }
  // Waits for a dpkg lock held by another install instead of failing.
  await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update", "-qq"], apt)
  await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", "chromium"], apt)
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} is still missing`)
  return CHROMIUM
}

/** Chromium headless, with the flags this closed network needs (no background fetches). */
export const launchChromium = async (): Promise<Browser> =>
  chromium.launch({
    executablePath: await ensureChromium(),
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
