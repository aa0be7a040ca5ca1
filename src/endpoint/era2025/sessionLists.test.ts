import { describe, expect, it } from "vitest"
import { sessionList, invalidParamsEvent, resultEvent } from "./sessionLists.js"
import { encodedPage, page, PAGE_SIZE } from "../../router/views.js"

const headers = { accept: "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": "2025-06-18" }
const request = { jsonrpc: "2.0", id: 1, method: "tools/list" }

describe("sessionList", () => {
  it("takes a well-formed list request, with or without a cursor and _meta", () => {
    expect(sessionList(headers, request)).toEqual({ id: 1, method: "tools/list", cursor: undefined })
    expect(sessionList(headers, { ...request, id: "a", method: "resources/templates/list", params: { cursor: "x", _meta: {} } }))
      .toEqual({ id: "a", method: "resources/templates/list", cursor: "x" })
    expect(sessionList({ ...headers, "mcp-protocol-version": undefined }, request)).toBeDefined()
    expect(sessionList({ ...headers, "content-type": "application/json; charset=utf-8" }, request)).toBeDefined()
    // A cursor of the wrong type is still ours to answer (with invalid params).
    expect(sessionList(headers, { ...request, params: { cursor: 5 } })).toEqual({ id: 1, method: "tools/list", cursor: 5 })
  })

  it("leaves everything else to the SDK", () => {
    const refused: Array<[Record<string, string | undefined>, unknown]> = [
      [headers, [request]],
      [headers, { ...request, method: "tools/call" }],
      [headers, { ...request, jsonrpc: "1.0" }],
      [headers, { ...request, id: null }],
      [headers, { ...request, id: 1.5 }],
      [headers, { ...request, extra: true }],
      [headers, { ...request, params: [] }],
      [headers, { ...request, params: { other: 1 } }],
      [headers, { ...request, params: { _meta: "x" } }],
      [{ ...headers, accept: "application/json" }, request],
      [{ ...headers, accept: undefined }, request],
      [{ ...headers, "content-type": "text/plain" }, request],
      [{ ...headers, "mcp-protocol-version": "1999-01-01" }, request],
      [headers, null],
      [headers, "tools/list"]
    ]
    for (const [h, body] of refused) expect(sessionList(h, body), JSON.stringify([h, body])).toBeUndefined()
  })

  it("writes each response as one SSE message event", () => {
    const dataOf = (event: ReadonlyArray<Uint8Array>) => {
      const text = Buffer.concat(event).toString()
      expect(text).toMatch(/^event: message\ndata: [^\n]+\n\n$/)
      return JSON.parse(text.slice("event: message\ndata: ".length))
    }
    expect(dataOf(resultEvent("x", Buffer.from('{"tools":["é\\n"]}')))).toEqual({ jsonrpc: "2.0", id: "x", result: { tools: ["é\n"] } })
    expect(dataOf(invalidParamsEvent(3, "Invalid cursor"))).toEqual({ jsonrpc: "2.0", id: 3, error: { code: -32602, message: "Invalid cursor" } })
  })
})

describe("encodedPage", () => {
  const items = Array.from({ length: PAGE_SIZE * 2 + 5 }, (_, i) => ({ name: `t${i}` }))

  it("encodes the same pages page() gives, for issued and invented cursors alike", () => {
    let cursor: string | undefined
    let pages = 0
    do {
      const expected = page(items, cursor)!
      const text = encodedPage(items, cursor, "tools")!
      expect(JSON.parse(text.toString())).toEqual({ tools: expected.items, ...(expected.nextCursor !== undefined && { nextCursor: expected.nextCursor }) })
      // Asked again (cached): the very same bytes.
      expect(encodedPage(items, cursor, "tools")).toBe(text)
      cursor = expected.nextCursor
      pages++
    } while (cursor !== undefined)
    expect(pages).toBe(3)
    const invented = Buffer.from("o7", "latin1").toString("base64url")
    expect(JSON.parse(encodedPage(items, invented, "tools")!.toString()).tools[0]).toEqual({ name: "t7" })
    expect(encodedPage(items, "not-a-cursor", "tools")).toBeUndefined()
  })

  it("keeps lists with the same items apart by result key", () => {
    expect(JSON.parse(encodedPage(items, undefined, "prompts")!.toString())).toHaveProperty("prompts")
    expect(JSON.parse(encodedPage(items, undefined, "tools")!.toString())).toHaveProperty("tools")
  })
})
