/**
 * Runs python_client.py (the Python `mcp` SDK's client) against the gateway once for a set of
 * features and hands back what it saw, feature by feature.
 */
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { repoRoot } from "../../helpers/processes.js"
import { ensurePythonEnv } from "../pythonEnv.js"
import type { ClientsGateway } from "./gateway.js"

const run = promisify(execFile)

export type PythonMode = "legacy" | "auto"

/** Feature name → what the client saw, or `{ error }` when that feature's code raised. */
export type PythonResults = Record<string, any>

export const runPythonClient = async (env: ClientsGateway, mode: PythonMode, features: ReadonlyArray<string>): Promise<PythonResults> => {
  const python = await ensurePythonEnv()
  const { stdout } = await run(
    python,
    [`${repoRoot}test/interop/clients/python_client.py`, env.url, mode, env.keys.alice, env.keys.bob, ...features],
    { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024, timeout: 240_000, env: { ...process.env, PYTHONWARNINGS: "ignore" } }
  )
  return JSON.parse(stdout) as PythonResults
}
