/**
 * The interop matrix's table: features in the order, client peers in theirs, a cell per
 * (peer, feature) with – where nothing ran.
 */
import { describe, expect, it } from "vitest"
import { renderTable } from "./matrixReporter.js"

describe("renderTable", () => {
  it("orders peers and features, and marks what did not run", () => {
    const cells = new Map([
      ["v1 ts sdk client\u0000progress", "failed"],
      ["v1 ts sdk client\u0000list/call", "passed"],
      ["python mcp (legacy)\u0000list/call", "passed"],
      ["python mcp (legacy)\u0000extra", "not run"],
      ["python mcp (legacy)\u0000progress", "n/a"]
    ] as const)
    const text = renderTable("clients", {
      peers: ["v1 ts sdk client", "python mcp (legacy)"],
      features: ["progress", "extra", "list/call"],
      cells: new Map(cells),
      brokenFiles: ["test/interop/clients-x.test.ts"]
    })
    expect(text.split("\n")).toEqual([
      "clients             │ list/call │ progress │ extra",
      "────────────────────┼───────────┼──────────┼──────",
      "python mcp (legacy) │     ✓     │   n/a    │   –  ",
      "v1 ts sdk client    │     ✓     │    ✗     │   –  ",
      "test/interop/clients-x.test.ts: failed before its tests could run"
    ])
  })
})
