/**
 * A vitest reporter that prints the interop matrix at the end of a run: one table per suite
 * (upstreams: test/interop/upstream*.test.ts; clients: test/interop/clients*.test.ts), a row per
 * peer (the top-level `describe`), a column per feature (the test's name). A cell is ✓ when every
 * test of that peer and feature passed, ✗ when one failed, – when none ran, n/a when the peer
 * cannot do it (a test named `<feature> (n/a: <why>)` shows so). Several files may
 * fill one table (a peer's tests split for parallelism). Prints nothing when no interop test ran.
 */
import { basename, relative } from "node:path"
import type { Reporter, TestCase, TestModule, Vitest } from "vitest/node"

/** The features both halves share, in the order the issue lists them; others follow as found. */
const FEATURE_ORDER = [
  "list/call",
  "structured content",
  "isError vs JSON-RPC error",
  "resources",
  "templates",
  "prompts",
  "completion",
  "progress",
  "sampling",
  "elicitation",
  "roots (two callers)",
  "logging",
  "cancellation",
  "DELETE"
]

/** The client peers in the order; other peers (the upstreams) keep the order they ran in. */
const PEER_ORDER = ["python mcp (legacy)", "python mcp (auto)", "mcp-remote", "inspector cli", "v1 ts sdk client"]

/** Names in `order` first, in that order, then the rest as found. */
const ordered = (names: ReadonlyArray<string>, order: ReadonlyArray<string>) => [
  ...order.filter((n) => names.includes(n)),
  ...names.filter((n) => !order.includes(n))
]

const SUITES = [
  { title: "upstreams", file: /^upstream.*\.test\.ts$/ },
  { title: "clients", file: /^clients.*\.test\.ts$/ }
] as const

type Cell = "passed" | "failed" | "not run" | "n/a"

/**
 * A test named `<feature> (n/a: <why>)` shows that the peer cannot do the feature (the same call
 * failing against it directly): its cell is `n/a` in the feature's own column while it passes.
 */
const NOT_APPLICABLE = /^(.*) \(n\/a: .*\)$/

const featureOf = (name: string): { readonly feature: string; readonly applicable: boolean } => {
  const match = NOT_APPLICABLE.exec(name)
  return match === null ? { feature: name, applicable: true } : { feature: match[1]!, applicable: false }
}

interface Table {
  readonly peers: Array<string>
  readonly features: Array<string>
  readonly cells: Map<string, Cell>
  /** Files that failed without a test to show it (an import or a top-level hook). */
  readonly brokenFiles: Array<string>
}

const key = (peer: string, feature: string) => `${peer}\u0000${feature}`

/** The top-level `describe` a test sits in (its module's name if none). */
const peerOf = (test: TestCase): string => {
  let suite = test.parent
  while (suite.type === "suite" && suite.parent.type === "suite") suite = suite.parent
  return suite.type === "suite" ? suite.name : "(no describe)"
}

/** A test meant to run that did not because a hook of its describe or file failed counts as failed. */
const cellOf = (test: TestCase): Cell => {
  const state = test.result().state
  if (state === "passed" || state === "failed") return state
  if (test.options.mode !== "run") return "not run"
  for (let parent = test.parent; ; parent = parent.parent) {
    if (parent.state() === "failed") return "failed"
    if (parent.type === "module") return "not run"
  }
}

const RANK: Record<Cell, number> = { failed: 3, passed: 2, "n/a": 1, "not run": 0 }

const merge = (a: Cell | undefined, b: Cell): Cell => a === undefined || RANK[b] > RANK[a] ? b : a

const SYMBOL: Record<Cell, string> = { passed: "✓", failed: "✗", "not run": "–", "n/a": "n/a" }

export const renderTable = (title: string, table: Table): string => {
  const features = ordered(table.features, FEATURE_ORDER)
  const peers = ordered(table.peers, PEER_ORDER)
  const peerWidth = Math.max(title.length, ...peers.map((p) => p.length))
  const header = [title.padEnd(peerWidth), ...features].join(" │ ")
  const rule = header.replace(/[^│]/g, "─").replace(/│/g, "┼")
  const rows = peers.map((peer) =>
    [
      peer.padEnd(peerWidth),
      ...features.map((feature) => {
        const symbol = SYMBOL[table.cells.get(key(peer, feature)) ?? "not run"]
        // Centre the symbol under its column's name.
        const width = Math.max(feature.length, symbol.length)
        const left = Math.floor((width - symbol.length) / 2)
        return " ".repeat(left) + symbol + " ".repeat(width - symbol.length - left)
      })
    ].join(" │ ")
  )
  const broken = table.brokenFiles.map((file) => `${file}: failed before its tests could run`)
  return [header, rule, ...rows, ...broken].join("\n")
}

export default class MatrixReporter implements Reporter {
  private root = process.cwd()

  onInit(vitest: Vitest) {
    this.root = vitest.config.root
  }

  async onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    const tables = new Map<string, Table>()
    for (const module of testModules) {
      const path = relative(this.root, module.moduleId)
      if (!path.startsWith("test/interop/")) continue
      const suite = SUITES.find((s) => s.file.test(basename(path)))
      if (suite === undefined) continue
      let table = tables.get(suite.title)
      if (table === undefined) {
        table = { peers: [], features: [], cells: new Map(), brokenFiles: [] }
        tables.set(suite.title, table)
      }
      let tests = 0
      for (const test of module.children.allTests()) {
        tests++
        const peer = peerOf(test)
        if (!table.peers.includes(peer)) table.peers.push(peer)
        const { applicable, feature } = featureOf(test.name)
        if (!table.features.includes(feature)) table.features.push(feature)
        const cell = cellOf(test)
        table.cells.set(key(peer, feature), merge(table.cells.get(key(peer, feature)), !applicable && cell === "passed" ? "n/a" : cell))
      }
      if (tests === 0 && module.state() === "failed") table.brokenFiles.push(path)
    }
    if (tables.size === 0) return
    // vitest calls onTestRunEnd and (the default reporter's) onFinished together; the default
    // reporter prints its failures and summary there, synchronously: wait a turn to print after them.
    await new Promise((resolve) => setImmediate(resolve))
    const out = SUITES.flatMap((s) => {
      const table = tables.get(s.title)
      return table === undefined ? [] : [`\nInterop matrix: ${s.title} (✓ passed, ✗ failed, – not run, n/a: the peer cannot)\n${renderTable(s.title, table)}\n`]
    })
    process.stdout.write(out.join(""))
  }
}
