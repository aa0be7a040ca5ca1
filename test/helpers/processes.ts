/**
 * Child processes for tests (real upstream servers), always killed at the end.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url))
export const everythingEntry = `${repoRoot}node_modules/@modelcontextprotocol/server-everything/dist/index.js`

const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})

export interface Spawned {
  readonly child: ChildProcess
  readonly output: () => string
  /** Resolves once `pattern` appears on stdout or stderr. */
  readonly waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  readonly kill: (signal?: NodeJS.Signals) => Promise<number | null>
}

export const spawnProcess = (command: string, args: ReadonlyArray<string>, env: Record<string, string> = {}, cwd = repoRoot): Spawned => {
  const child = spawn(command, [...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  let output = ""
  const listeners = new Set<() => void>()
  const onData = (chunk: Buffer) => {
    output += chunk.toString()
    for (const l of listeners) l()
  }
  child.stdout?.on("data", onData)
  child.stderr?.on("data", onData)
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => {
    children.delete(child)
    resolve(code)
  }))
  return {
    child,
    output: () => output,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output)
          if (match) {
            listeners.delete(check)
            clearTimeout(timer)
            resolve(match[0])
          }
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          reject(new Error(`timed out waiting for ${pattern} in output:\n${output}`))
        }, timeoutMs)
        listeners.add(check)
        check()
      }),
    kill: async (signal = "SIGTERM") => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      return exited
    }
  }
}

/** A TCP port that is free right now. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
    server.on("error", reject)
  })

/** Node running TypeScript through tsx, for fixture processes. */
export const tsNode = (file: string, args: ReadonlyArray<string> = [], env: Record<string, string> = {}) =>
  spawnProcess(process.execPath, ["--import", "tsx", file, ...args], env)

/** server-everything in SSE mode on `port` (its legacy HTTP+SSE transport). */
export const everythingSse = (port: number) => spawnProcess(process.execPath, [everythingEntry, "sse"], { PORT: String(port) })
