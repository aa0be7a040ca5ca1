// The runtime imports Effect modules by path (`effect/Effect`, `@effect/platform/HttpServerResponse`),
// never the package barrels: a barrel evaluates every module it re-exports, and
// `@effect/platform`'s alone is 5.8 MB (Swagger UI, Scalar), ~0.5 s of every start-up.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "./helpers/processes.js"

const runtimeFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return runtimeFiles(path)
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : []
  })

describe("start-up imports", () => {
  it("src/ and plugins/ import no Effect package barrel at run time", () => {
    const barrel = /^import (?!type )[^;]*? from "(effect|@effect\/platform|@effect\/platform-node)"/m
    const offenders = ["src", "plugins"].flatMap((dir) => runtimeFiles(join(repoRoot, dir)))
      .filter((file) => barrel.test(readFileSync(file, "utf8")))
    expect(offenders).toEqual([])
  })
})
