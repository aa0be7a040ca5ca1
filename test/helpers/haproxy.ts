/**
 * A real load balancer for cluster tests: Debian's `haproxy` (installed here when missing, as
 * `redis-server` is), round-robin over the given replicas with no stickiness, health-checking
 * `GET /healthz` often enough that a dead replica leaves rotation within ~1–2 s. Its log (one line
 * per request, naming the replica that served it, and every health change) is kept in `output()`
 * so a failing test can show it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, spawnProcess, type Spawned } from "./processes.js"
import { ensureDebianPackage } from "./redis.js"

const HAPROXY = "/usr/sbin/haproxy"

export const ensureHaproxy = () => ensureDebianPackage(HAPROXY, "haproxy")

export interface HaproxyOptions {
  /** The replicas' origins, `http://127.0.0.1:<port>`; their servers are named r0, r1, … in this order. */
  readonly replicas: ReadonlyArray<string>
  /** Health-check interval, ms (default 300; two failed checks take a replica out). */
  readonly checkIntervalMs?: number
}

export interface Haproxy {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  /** HAProxy's process id (the bench pins it to a core and meters its CPU). */
  readonly pid: number
  /** The generated config, as HAProxy runs it (the docs show this one). */
  readonly config: string
  /** HAProxy's log so far: request lines (`… gateways/r1 …`) and server health changes. */
  readonly output: () => string
  /** Each server's state from HAProxy's stats (`UP`, `DOWN`, `UP 1/2`, …), by name. */
  readonly serverStates: () => Promise<Record<string, string>>
  /** Stops HAProxy and removes its config and stats socket. */
  readonly stop: () => Promise<void>
}

/** The config: what the docs' "Behind a load balancer" section shows, with the ports filled in. */
export const haproxyConfig = (options: { readonly port: number; readonly replicas: ReadonlyArray<string>; readonly statsSocket: string; readonly checkIntervalMs: number }) => {
  const inter = options.checkIntervalMs
  return [
    "global",
    "  log stdout format raw local0 info",
    `  stats socket ${options.statsSocket} mode 600 level user`,
    "",
    "defaults",
    "  mode http",
    "  log global",
    "  option httplog",
    "  timeout connect 2s",
    "  timeout client 1h",
    // An MCP call's answer may be an SSE stream that stays quiet while a tool runs.
    "  timeout server 1h",
    "  timeout tunnel 1h",
    "  timeout http-keep-alive 30s",
    // A replica that refuses the connection (dead, not yet out of rotation) is retried on another;
    // a request already sent is never re-sent (HAProxy's default retry-on is connect failures).
    "  retries 2",
    "  option redispatch 1",
    "",
    "frontend mcp",
    `  bind 127.0.0.1:${options.port}`,
    "  default_backend gateways",
    "",
    "backend gateways",
    "  balance roundrobin",
    // HTTP/1.1 with a Host the gateway accepts: HAProxy's default check (HTTP/1.0, no Host)
    // is refused 403 by the gateway's Host guard, and every replica would be marked DOWN.
    "  option httpchk",
    "  http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host localhost",
    "  http-check expect status 200",
    `  default-server check inter ${inter}ms fastinter ${inter}ms downinter ${inter}ms fall 2 rise 2`,
    ...options.replicas.map((origin, i) => `  server r${i} ${new URL(origin).host}`),
    ""
  ].join("\n")
}

/** Asks HAProxy's stats socket one command and returns its whole answer. */
const askStats = (socket: string, command: string) =>
  new Promise<string>((resolve, reject) => {
    const client = connect(socket)
    let answer = ""
    client.on("connect", () => client.end(`${command}\n`))
    client.on("data", (chunk: Buffer) => (answer += chunk.toString("utf8")))
    client.on("end", () => resolve(answer))
    client.on("error", reject)
  })

/** HAProxy on a free loopback port in front of `replicas`, every server up before it resolves. */
export const startHaproxy = async (options: HaproxyOptions): Promise<Haproxy> => {
  const binary = await ensureHaproxy()
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "aperture-haproxy-"))
  const statsSocket = join(dir, "stats.sock")
  const config = haproxyConfig({ port, replicas: options.replicas, statsSocket, checkIntervalMs: options.checkIntervalMs ?? 300 })
  const configFile = join(dir, "haproxy.cfg")
  writeFileSync(configFile, config)
  // -db: stay in the foreground (stopped with the test); -W is not needed for one process.
  const haproxy: Spawned = spawnProcess(binary, ["-db", "-f", configFile])
  const stop = async () => {
    await haproxy.kill("SIGTERM")
    rmSync(dir, { recursive: true, force: true })
  }
  const serverStates = async () => {
    // `show stat` is CSV: pxname,svname,…,status (the 18th column).
    const csv = await askStats(statsSocket, "show stat")
    const states: Record<string, string> = {}
    for (const line of csv.split("\n")) {
      const fields = line.split(",")
      if (fields[0] === "gateways" && fields[1] !== undefined && /^r\d+$/.test(fields[1])) states[fields[1]] = fields[17] ?? ""
    }
    return states
  }
  try {
    const deadline = Date.now() + 15_000
    for (;;) {
      if (haproxy.child.exitCode !== null) throw new Error(`haproxy exited with ${haproxy.child.exitCode}`)
      const states = await serverStates().catch(() => ({} as Record<string, string>))
      if (Object.keys(states).length === options.replicas.length && Object.values(states).every((s) => s === "UP")) break
      if (Date.now() > deadline) throw new Error(`haproxy's servers are not all UP: ${JSON.stringify(states)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  } catch (error) {
    await stop()
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nhaproxy output:\n${haproxy.output()}\nconfig:\n${config}`)
  }
  return { origin: `http://127.0.0.1:${port}`, pid: haproxy.child.pid!, config, output: haproxy.output, serverStates, stop }
}
