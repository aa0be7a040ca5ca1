/**
 * The Python peers of the interop suite (the `mcp` SDK's client, FastMCP servers) run in a venv
 * the tests make themselves, with pip from the package index, pinned here. It is made once per
 * checkout (`node_modules/.cache/aperture-python`) and re-made when the pins change; test files
 * running in parallel wait for the one that makes it (a directory lock).
 */
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { promisify } from "node:util"
import { repoRoot } from "../helpers/processes.js"

const run = promisify(execFile)

/** What the venv holds: change a pin and every checkout re-makes its venv. */
export const PYTHON_REQUIREMENTS = ["fastmcp==4.0.10", "mcp==2.3.0"] as const

const root = `${repoRoot}node_modules/.cache/aperture-python`
const venv = `${root}/venv`
const stamp = `${venv}/.aperture-requirements`
const lock = `${root}/lock`

/** The venv's interpreter. */
export const pythonBin = `${venv}/bin/python`

const upToDate = () => existsSync(stamp) && readFileSync(stamp, "utf8") === PYTHON_REQUIREMENTS.join("\n")

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let ready: Promise<string> | undefined

/** Makes the venv if it is missing or stale; resolves to its `python`. */
export const ensurePythonEnv = (): Promise<string> => (ready ??= make())

const make = async (): Promise<string> => {
  mkdirSync(root, { recursive: true })
  for (const started = Date.now(); ;) {
    if (upToDate()) return pythonBin
    try {
      mkdirSync(lock)
      break
    } catch {
      // Another test file is making it; a lock older than 10 minutes is a crashed run's.
      if (Date.now() - started > 600_000) rmSync(lock, { recursive: true, force: true })
      await sleep(500)
    }
  }
  try {
    if (upToDate()) return pythonBin
    rmSync(venv, { recursive: true, force: true })
    await run("python3", ["-m", "venv", venv])
    // --retries 0: where the default index is unreachable but a configured extra index serves the
    // packages, pip's retries with back-off turned a 20 s install into 9 minutes.
    await run(`${venv}/bin/pip`, ["install", "--retries", "0", "--disable-pip-version-check", "-q", ...PYTHON_REQUIREMENTS], {
      maxBuffer: 16 * 1024 * 1024
    })
    writeFileSync(stamp, PYTHON_REQUIREMENTS.join("\n"))
    return pythonBin
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}
