/**
 * Reads a V8 CPU profile (`node --cpu-prof`) into where the time went: self time by category
 * and by function, counting only the samples inside a measured window, so start-up and warm-up
 * are left out. Functions inside the CLI's bundle are named by the source module esbuild marks
 * them with (`// dist/src/endpoint/era2025/sessionCalls.js`), not by the chunk they ended up in.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<{ readonly id: number; readonly callFrame: CallFrame }>
  readonly startTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** A window on the monotonic clock the profile's timestamps use (`process.hrtime`), in µs. */
export interface Window {
  readonly fromUs: number
  readonly toUs: number
}

export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n)

export interface ProfileSummary {
  /** CPU time sampled in the window, idle excluded (ms). */
  readonly busyMs: number
  /** Self time per category (ms), largest first. */
  readonly categories: ReadonlyArray<readonly [string, number]>
  /** Self time per function (`module: name`), largest first. */
  readonly functions: ReadonlyArray<readonly [string, number]>
}

/** The source module each line of a bundle chunk came from, by esbuild's `// path` markers. */
const bundleModules = (() => {
  const cache = new Map<string, { starts: Array<number>; names: Array<string> }>()
  return (url: string) => {
    let modules = cache.get(url)
    if (modules === undefined) {
      modules = { starts: [], names: [] }
      try {
        const lines = readFileSync(fileURLToPath(url), "utf8").split("\n")
        lines.forEach((line, i) => {
          // esbuild names a module by its path from the bundle's directory: `dist/src/…`, or
          // `node_modules/…` behind `../` when node_modules is a symlink to another tree.
          const marker = /^\/\/ ((?:\S*\/)?(?:dist\/src|node_modules)\/\S+)$/.exec(line)
          if (marker !== null) {
            const path = marker[1]!
            const packageAt = path.lastIndexOf("node_modules/")
            modules!.starts.push(i)
            modules!.names.push(packageAt >= 0 ? path.slice(packageAt) : path.slice(path.indexOf("dist/src/")))
          }
        })
      } catch {
        // not a file we can read: named by its URL
      }
      cache.set(url, modules)
    }
    return modules
  }
})()

/** The module a frame's code comes from: a source path, a package path, or a `node:` module. */
const moduleOf = (frame: CallFrame): string => {
  const url = frame.url
  if (url.includes("/dist/bundle/")) {
    const { starts, names } = bundleModules(url)
    let lo = 0
    let hi = starts.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (starts[mid]! <= frame.lineNumber) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    if (found >= 0) return names[found]!
  }
  const packageAt = url.lastIndexOf("node_modules/")
  if (packageAt >= 0) return url.slice(packageAt)
  return url
}

const WRITES: ReadonlySet<string> = new Set(["writev", "writeBuffer", "writeUtf8String", "writeLatin1String"])

const NATIVE: Readonly<Record<string, string>> = {
  "(program)": "V8 (program: native code outside any JS function)",
  runMicrotasks: "V8 microtask queue",
  parse: "JSON.parse",
  stringify: "JSON.stringify"
}

/** The category a frame's self time counts under; `undefined`: idle. */
const categoryOf = (frame: CallFrame, module: string): string | undefined => {
  const name = frame.functionName
  if (name === "(idle)") return undefined
  if (name === "(garbage collector)") return "garbage collection"
  if (WRITES.has(name)) return "socket writes (writev, the syscall)"
  if (module.startsWith("node_modules/effect/")) return "Effect runtime (fibers, ops)"
  if (module.startsWith("node_modules/@effect/") || module.startsWith("node_modules/find-my-way-ts/")) {
    return "Effect platform (HTTP server, router)"
  }
  if (module.startsWith("node_modules/undici/")) return "undici (upstream HTTP client)"
  if (module.startsWith("node_modules/@modelcontextprotocol/") || module.startsWith("node_modules/zod")) return "MCP SDK, zod"
  if (module.startsWith("dist/src/") || /\/(src|bench|dist\/bundle)\//.test(module)) return "own code (gateway or relay)"
  if (module.startsWith("node:internal/abort") || module.startsWith("node:internal/event_target")) {
    return "Node AbortController, EventTarget"
  }
  if (/^node:(_http|internal\/http|http)/.test(module)) return "Node HTTP (parser glue, server, outgoing)"
  if (/^node:(internal\/streams|stream|net|internal\/stream_base)/.test(module)) return "Node streams, sockets"
  if (/^node:(events|internal\/timers|timers|internal\/process\/task_queues)/.test(module)) return "Node events, timers, ticks"
  if (module.startsWith("node:")) return "Node, other"
  if (module.startsWith("wasm://")) return "undici (upstream HTTP client)" // llhttp, undici's parser
  if (module === "") return NATIVE[name] ?? "V8 and native, other"
  return `other: ${module}`
}

const sortedEntries = (counts: Map<string, number>) => [...counts.entries()].sort((a, b) => b[1] - a[1])

/** Self time in `window`, by category and by function. */
export const summarizeProfile = (file: string, window: Window): ProfileSummary => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const frames = new Map<number, { category: string | undefined; fn: string }>()
  for (const node of profile.nodes) {
    const module = moduleOf(node.callFrame)
    frames.set(node.id, {
      category: categoryOf(node.callFrame, module),
      fn: `${module === "" ? "(native)" : module}: ${
        node.callFrame.functionName === ""
          ? `(anonymous, ${node.callFrame.url.includes("/dist/bundle/") ? "bundle " : ""}line ${node.callFrame.lineNumber + 1})`
          : node.callFrame.functionName
      }`
    })
  }
  const categories = new Map<string, number>()
  const functions = new Map<string, number>()
  let at = profile.startTime
  let busyUs = 0
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!
    if (at < window.fromUs || at > window.toUs) continue
    const frame = frames.get(profile.samples[i]!)!
    if (frame.category === undefined) continue
    // A sample stands for the time until the next one.
    const us = profile.timeDeltas[i + 1] ?? 0
    busyUs += us
    categories.set(frame.category, (categories.get(frame.category) ?? 0) + us)
    functions.set(frame.fn, (functions.get(frame.fn) ?? 0) + us)
  }
  const ms = (entries: Array<[string, number]>) => entries.map(([k, us]) => [k, us / 1000] as const)
  return { busyMs: busyUs / 1000, categories: ms(sortedEntries(categories)), functions: ms(sortedEntries(functions)) }
}
