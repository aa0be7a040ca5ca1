/**
 * A real Redis for cluster tests: Debian's `redis-server` (installed here when missing, so a
 * clean CI machine gets it from `npm test` itself, as the page tests get Chromium), started on a
 * free loopback port with no persistence, and stopped and started again on the same port to
 * show what the gateway does while Redis is away.
 */
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { promisify } from "node:util"
import { freePort, spawnProcess, type Spawned } from "./processes.js"

const REDIS_SERVER = "/usr/bin/redis-server"
const run = promisify(execFile)

/** Installs a Debian package when `binary` is missing (needs root, as on CI and these machines). */
export const ensureDebianPackage = async (binary: string, pkg: string): Promise<string> => {
  if (existsSync(binary)) return binary
  if (process.getuid?.() !== 0) {
    throw new Error(`${binary} is missing; install it with: sudo apt-get update && sudo apt-get install -y ${pkg}`)
  }
  const apt = { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, maxBuffer: 64 * 1024 * 1024 }
  // Waits for a dpkg lock held by another install (Chromium's, say) instead of failing.
  await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update", "-qq"], apt)
  await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", pkg], apt)
  if (!existsSync(binary)) throw new Error(`apt-get installed ${pkg} but ${binary} is still missing`)
  return binary
}

export const ensureRedis = () => ensureDebianPackage(REDIS_SERVER, "redis-server")

export interface TestRedis {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Stops the server (SIGTERM, then SIGKILL after 2 s). */
  readonly stop: () => Promise<void>
  /** Starts it again on the same port (empty: nothing is persisted). */
  readonly start: () => Promise<void>
}

/** A `redis-server` on a free loopback port, ready to take commands. */
export const startRedis = async (): Promise<TestRedis> => {
  const binary = await ensureRedis()
  const port = await freePort()
  let server: Spawned | undefined
  const start = async () => {
    server = spawnProcess(binary, [
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--save", "",
      "--appendonly", "no",
      "--protected-mode", "yes"
    ])
    await server.waitFor(/Ready to accept connections/)
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await server?.kill()
      server = undefined
    },
    start
  }
}

/** How many times Redis ran `command` since it started (`INFO commandstats`), e.g. `xadd`. */
export const commandCalls = async (client: { sendCommand: (args: Array<string>) => Promise<unknown> }, command: string): Promise<number> => {
  const line = String(await client.sendCommand(["INFO", "commandstats"])).split("\n").find((l) => l.startsWith(`cmdstat_${command}:`))
  return line === undefined ? 0 : Number(/calls=(\d+)/.exec(line)![1])
}
