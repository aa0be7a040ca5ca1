/**
 * Loading a TS config through jiti's transpile cache: where the cache lives, that a restart uses
 * it, and that a broken or unwritable cache never stops a good config from loading.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { builtInPlugins } from "../../plugins/builtIns.js"
import { loadConfigFile } from "./load.js"

const configSource = (port: number) => `
import { defineConfig, grant, mcp } from "aperture"
export default defineConfig({
  server: { port: ${port} },
  connectors: { fx: mcp({ url: "http://127.0.0.1:9/mcp" }) },
  grants: [grant({ src: ["local"], connectors: ["fx/**"] })]
})
`

const load = (file: string) => Effect.either(loadConfigFile(file, builtInPlugins))

const portOf = (file: string) => loadConfigFile(file, builtInPlugins).pipe(Effect.map((config) => config.server.port))

describe("the config transpile cache", () => {
  let work: string
  let savedXdg: string | undefined

  beforeEach(() => {
    work = mkdtempSync(path.join(tmpdir(), "aperture-load-"))
    savedXdg = process.env["XDG_CACHE_HOME"]
    process.env["XDG_CACHE_HOME"] = path.join(work, "cache")
  })

  afterEach(() => {
    if (savedXdg === undefined) delete process.env["XDG_CACHE_HOME"]
    else process.env["XDG_CACHE_HOME"] = savedXdg
    rmSync(work, { recursive: true, force: true })
  })

  const cached = () => {
    const dir = path.join(work, "cache", "aperture", "jiti")
    return readdirSync(dir).map((name) => path.join(dir, name))
  }

  it.effect("keeps the transpiled config in a private directory under XDG_CACHE_HOME, and follows edits", () =>
    Effect.gen(function*() {
      const file = path.join(work, "aperture.config.ts")
      writeFileSync(file, configSource(8101))
      expect(yield* portOf(file)).toBe(8101)
      const [entry] = cached()
      expect(entry).toBeDefined()
      expect(statSync(path.join(work, "cache", "aperture")).mode & 0o777).toBe(0o700)
      // A second load reads the cached module; an edit is a new hash, so never a stale config.
      expect(yield* portOf(file)).toBe(8101)
      writeFileSync(file, configSource(8102))
      expect(yield* portOf(file)).toBe(8102)
    }))

  it.effect("closes a cache directory that was left open to others, since a transpiled config can hold secrets", () =>
    Effect.gen(function*() {
      const root = path.join(work, "cache", "aperture")
      mkdirSync(root, { recursive: true, mode: 0o755 })
      chmodSync(root, 0o755)
      const file = path.join(work, "aperture.config.ts")
      writeFileSync(file, configSource(8106))
      expect(yield* portOf(file)).toBe(8106)
      expect(statSync(root).mode & 0o777).toBe(0o700)
    }))

  it.effect("rebuilds a cached module that no longer parses", () =>
    Effect.gen(function*() {
      const file = path.join(work, "aperture.config.ts")
      writeFileSync(file, configSource(8103))
      expect(yield* portOf(file)).toBe(8103)
      const [entry] = cached()
      const text = readFileSync(entry!, "utf8")
      // jiti trusts an entry whose trailing marker matches the source's hash: keep the marker,
      // break the code before it (a module transpiled twice declares its helpers twice).
      const marker = text.slice(text.lastIndexOf(" /* v"))
      writeFileSync(entry!, `const broken = 1;\nconst broken = 2;\n${text.slice(0, -marker.length)}${marker}`)
      expect(yield* portOf(file)).toBe(8103)
      expect(readFileSync(entry!, "utf8")).not.toContain("const broken")
    }))

  it.effect("loads without a cache when the cache directory cannot be made", () =>
    Effect.gen(function*() {
      const blocker = path.join(work, "not-a-directory")
      writeFileSync(blocker, "")
      process.env["XDG_CACHE_HOME"] = blocker
      const file = path.join(work, "aperture.config.ts")
      writeFileSync(file, configSource(8104))
      expect(yield* portOf(file)).toBe(8104)
    }))

  it.effect("still reports a genuine syntax error with its line", () =>
    Effect.gen(function*() {
      const file = path.join(work, "aperture.config.ts")
      writeFileSync(file, `${configSource(8105)}\nexport const oops = {\n`)
      const result = yield* load(file)
      expect(Either.isLeft(result) && result.left.message).toMatch(/cannot load .*aperture\.config\.ts: .*\(at .*aperture\.config\.ts:\d+:\d+\)/)
    }))
})
