/**
 * Smoke test of every example: each folder in examples/ with a README must have a ```sh run
 * block, and is run exactly as the README says (from the repository root, `PORT` set to a free port). Every
 * line of its ```text expect block must appear in the output; if it serves a gateway,
 * `/healthz?ready` must answer 200; SIGTERM must stop it with exit code 0.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { eventually } from "./helpers/gateway.js"
import { freePort, repoRoot } from "./helpers/processes.js"

interface Example {
  readonly name: string
  readonly command: string | undefined
  readonly expected: ReadonlyArray<string>
}

const block = (readme: string, info: string): string | undefined =>
  new RegExp("^```" + info + "[ \\t]*\\n([\\s\\S]*?)^```", "m").exec(readme)?.[1]?.trim()

const examplesDir = join(repoRoot, "examples")
const examples: ReadonlyArray<Example> = readdirSync(examplesDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(examplesDir, entry.name, "README.md")))
  .map((entry) => {
    const readme = readFileSync(join(examplesDir, entry.name, "README.md"), "utf8")
    const expected = block(readme, "text expect")
    return {
      name: entry.name,
      command: block(readme, "sh run"),
      expected: expected === undefined ? [] : expected.split("\n").map((l) => l.trim()).filter((l) => l !== "")
    }
  })

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode)
    child.once("exit", (code) => resolve(code))
  })

describe("examples", () => {
  it("has the examples the README promises", () => {
    const names = examples.map((e) => e.name)
    for (const name of ["basic", "oauth-client-credentials", "custom-auth-plugin", "embed-in-effect-app", "from-aperture-json"]) {
      expect(names).toContain(name)
    }
  })

  for (const example of examples) {
    it(`${example.name}: runs with the README's command`, async () => {
      // Every example is runnable with one command: a README without one is a defect.
      expect(example.command, `examples/${example.name}/README.md has no \`\`\`sh run block`).toBeDefined()
      const port = await freePort()
      // Its own process group, so SIGTERM reaches what the command starts (npx → tsx → node).
      const child = spawn("bash", ["-c", example.command!], {
        cwd: repoRoot,
        env: { ...process.env, PORT: String(port), FORCE_COLOR: "0", NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
      let output = ""
      child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
      const signalGroup = (signal: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, signal)
        } catch {
          // already gone
        }
      }
      try {
        for (const line of example.expected) {
          await eventually(() => {
            if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${output}`)
            return output.includes(line)
          }, 90_000, `"${line}" in the output of ${example.name}:\n${output}`)
        }
        if (output.includes(`127.0.0.1:${port}`)) {
          await eventually(async () => (await fetch(`http://127.0.0.1:${port}/healthz?ready`)).status === 200, 60_000, "ready")
        }
        signalGroup("SIGTERM")
        const code = await Promise.race([exited(child), new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 45_000))])
        expect(code, output).toBe(0)
      } finally {
        signalGroup("SIGKILL")
      }
    }, 240_000)
  }
})
