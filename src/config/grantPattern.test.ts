import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { parsePattern, patternTouchesCategory } from "./grantPattern.js"

const touches = (source: string, category: "proxy" | "tools") =>
  patternTouchesCategory(Either.getOrThrow(parsePattern(source)), "github", ["ops"], category)

describe("patternTouchesCategory", () => {
  it("tells whether a pattern can allow anything of a category on a connector", () => {
    expect(touches("github/proxy/repos/**", "proxy")).toBe(true)
    expect(touches("github/*/x", "proxy")).toBe(true)
    expect(touches("github/**", "proxy")).toBe(true)
    expect(touches("**", "proxy")).toBe(true)
    expect(touches("label:ops", "proxy")).toBe(true)
    expect(touches("github/tools/*", "proxy")).toBe(false)
    expect(touches("other/proxy/**", "proxy")).toBe(false)
    expect(touches("label:dev", "proxy")).toBe(false)
    expect(touches("github/proxy/**", "tools")).toBe(false)
  })
})
