/**
 * The benchmark's topology and meters: processes pinned to cores (`taskset`), and their CPU
 * time and resident memory read from /proc, so every figure is measured, not estimated.
 */
import { execSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { cpus } from "node:os"
import { spawnProcess, type Spawned } from "../test/helpers/processes.js"

export const hasTaskset = (() => {
  try {
    execSync("taskset -c 0 true", { stdio: "ignore" })
    return cpus().length >= 2
  } catch {
    return false
  }
})()

/** CPU 1 runs only the gateway; CPU 0 the upstream and the load generator (bench/README.md, "Method"). */
export const GATEWAY_CPU = 1
export const SHARED_CPU = 0

/** Pins this process (the load generator) to the shared core. */
export const pinSelf = () => {
  if (hasTaskset) execSync(`taskset -cp ${SHARED_CPU} ${process.pid}`, { stdio: "ignore" })
}

const started: Array<Spawned> = []

/** Starts a process on `cpu`; it is stopped by {@link stopAll}. */
export const launch = (cpu: number, command: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Spawned => {
  const child = hasTaskset
    ? spawnProcess("taskset", ["-c", String(cpu), command, ...args], { NODE_ENV: "production", ...env })
    : spawnProcess(command, args, { NODE_ENV: "production", ...env })
  started.push(child)
  return child
}

export const stopAll = async () => {
  for (const child of started.splice(0)) await child.kill("SIGINT")
}

/** The node process behind a launched one (taskset execs it, so usually the same pid). */
export const pidOf = (spawned: Spawned): number => spawned.child.pid!

/** CPU milliseconds (user + system) a process has used so far. */
export const cpuMillis = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10 // CLK_TCK = 100
}

/** Resident set size in MiB. */
export const rssMiB = (pid: number): number => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024
}

export const machineLine = () =>
  `${cpus().length}× ${cpus()[0]?.model.trim() ?? "cpu"}, Node ${process.version}${
    hasTaskset ? `, gateway pinned to CPU ${GATEWAY_CPU}, upstream and load generator to CPU ${SHARED_CPU}` : ", no CPU pinning available"
  }`

/** Where launched gateways write heap snapshots (`--heapsnapshot-signal`); see {@link liveHeapMiB}. */
export const snapshotDir = mkdtempSync(join(tmpdir(), "aperture-bench-heap-"))
export const heapSnapshotArgs = ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapshotDir}`]

/**
 * The live JS heap of a process started with {@link heapSnapshotArgs}, in MiB: it writes a heap
 * snapshot (after a full GC) and the sizes of what is reachable are summed. RSS also counts the
 * garbage V8 has not collected yet and the room it keeps, so only this says what data holds.
 */
export const liveHeapMiB = async (pid: number): Promise<number> => {
  for (const file of readdirSync(snapshotDir)) rmSync(join(snapshotDir, file))
  process.kill(pid, "SIGUSR2")
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500))
    const file = readdirSync(snapshotDir).find((f) => f.endsWith(".heapsnapshot"))
    if (file === undefined) continue
    let snapshot: { snapshot: { meta: { node_fields: Array<string> } }; nodes: Array<number> }
    try {
      snapshot = JSON.parse(readFileSync(join(snapshotDir, file), "utf8"))
    } catch {
      continue // still being written
    }
    const fields = snapshot.snapshot.meta.node_fields
    const selfSize = fields.indexOf("self_size")
    let bytes = 0
    for (let i = selfSize; i < snapshot.nodes.length; i += fields.length) bytes += snapshot.nodes[i]!
    rmSync(join(snapshotDir, file))
    return bytes / 1024 / 1024
  }
  return Number.NaN
}
