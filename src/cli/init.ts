/**
 * `aperture init`: the files a new folder needs for `npx aperture start` — a starter
 * `aperture.config.ts`, and for an editor to type-check it, a `package.json` naming
 * `aperture-gateway` and a `tsconfig.json`, each only where there is none.
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { DEFAULT_CONFIG_FILES } from "../config/load.js"
import { version } from "../version.js"

/** The name this package is installed by, which the starter config imports. */
export const PACKAGE_NAME = "aperture-gateway"

/** A config file is already here: init writes one only into a folder without one. */
export class ConfigExists extends Data.TaggedError("ConfigExists")<{ readonly file: string }> {
  override get message() {
    return `${this.file} already exists; init writes a starter config only where there is none (edit it, or run init in an empty folder)`
  }
}

/** The starter config: one real connector, and a grant for the user at this machine. */
export const STARTER_CONFIG = `// The gateway's config. \`npx aperture check\` validates it and lists what it serves;
// \`npx aperture start\` serves it at http://127.0.0.1:8080/v1/mcp.
import { defineConfig, grant, loopback, stdio } from "${PACKAGE_NAME}"

export default defineConfig({
  server: { host: "127.0.0.1", port: 8080 },
  connectors: {
    // The MCP reference server, started by the gateway; its tools appear as everything_<name>.
    everything: stdio({
      command: "npx",
      args: ["-y", "@modelcontextprotocol/server-everything", "stdio"],
      description: "The MCP reference server that exercises every protocol feature"
    })
    // A remote MCP server, its token read from the environment (add mcp, bearer, env to the import):
    // docs: mcp({ url: "https://mcp.example.com/v1/mcp", auth: bearer({ secret: env("DOCS_TOKEN") }) })
  },
  // Who calls: a request from this machine is the user "local".
  identity: [loopback({ login: "local" })],
  // What each caller may use (nothing unless granted): "local" may use every connector.
  grants: [grant({ src: ["local"], connectors: ["**"] })]
})
`

/** npm's rules for a package name, applied to the folder's name; `aperture-gateway-app` when nothing is left. */
const packageNameFor = (dir: string): string => {
  const name = path.basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+|-+$/g, "")
  return name === "" || name === PACKAGE_NAME ? `${PACKAGE_NAME}-app` : name.slice(0, 214)
}

const starterPackageJson = (dir: string) =>
  JSON.stringify(
    {
      name: packageNameFor(dir),
      private: true,
      type: "module",
      scripts: { start: "aperture start", check: "aperture check" },
      dependencies: { [PACKAGE_NAME]: `^${version}` }
    },
    null,
    2
  ) + "\n"

// Enough for an editor to check the config against the package's types; nothing is emitted.
const STARTER_TSCONFIG = JSON.stringify(
  {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      skipLibCheck: true,
      noEmit: true
    },
    include: ["aperture.config.ts"]
  },
  null,
  2
) + "\n"

/** What init did in the folder, for the report. */
export interface InitResult {
  readonly written: ReadonlyArray<string>
  /** Files that were there already and were left as they were. */
  readonly kept: ReadonlyArray<string>
  /** Whether `aperture-gateway` is installed in the folder (`npm install` is the next step if not). */
  readonly installed: boolean
}

/**
 * Writes the starter files into `dir`. Fails with {@link ConfigExists}, writing nothing, when any
 * config `aperture start` would find is there; an existing `package.json` or `tsconfig.json` is kept.
 */
export const init = (dir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    for (const name of DEFAULT_CONFIG_FILES) {
      if (yield* fs.exists(path.join(dir, name))) return yield* new ConfigExists({ file: name })
    }
    const files: ReadonlyArray<readonly [string, string]> = [
      ["aperture.config.ts", STARTER_CONFIG],
      ["package.json", starterPackageJson(dir)],
      ["tsconfig.json", STARTER_TSCONFIG]
    ]
    const written: Array<string> = []
    const kept: Array<string> = []
    for (const [name, contents] of files) {
      const file = path.join(dir, name)
      if (yield* fs.exists(file)) {
        kept.push(name)
        continue
      }
      // `wx`: a file that appeared since the check is not overwritten either.
      yield* fs.writeFileString(file, contents, { flag: "wx" })
      written.push(name)
    }
    const installed = yield* fs.exists(path.join(dir, "node_modules", PACKAGE_NAME, "package.json"))
    return { written, kept, installed } satisfies InitResult
  })

/** What init prints: the files, and the commands to run next. */
export const initReport = ({ installed, kept, written }: InitResult): string =>
  [
    ...written.map((name) => `wrote ${name}`),
    ...kept.map((name) => `kept ${name} (already here)`),
    "",
    "Next:",
    // Until it is installed here, `npx aperture` would fetch npm's unrelated `aperture` package.
    ...(installed ? [] : [
      written.includes("package.json")
        ? `  npm install          install ${PACKAGE_NAME} here (the aperture command and its types)`
        : `  npm install ${PACKAGE_NAME}`
    ]),
    "  npx aperture check   validate the config; list connectors and grants",
    "  npx aperture start   serve it at http://127.0.0.1:8080/v1/mcp"
  ].join("\n")
