/**
 * `aperture start` as a process, run from the source (tsx) so no build is needed: for what only
 * the command does (watching its config file, SIGHUP, `/api/config`).
 */
import { freePort, repoRoot, type Spawned, tsNode } from "./processes.js"

export interface CliGateway {
  readonly process: Spawned
  readonly origin: string
  readonly url: string
  /** The log lines so far that contain `text`. */
  readonly linesWith: (text: string) => ReadonlyArray<string>
  readonly close: () => Promise<void>
}

export const startCliGateway = async (configFile: string): Promise<CliGateway> => {
  const port = await freePort()
  const proc = tsNode(`${repoRoot}src/cli/main.ts`, ["start", "--config", configFile, "--port", String(port)])
  await proc.waitFor(/Aperture listening on/, 60_000)
  const origin = `http://127.0.0.1:${port}`
  return {
    process: proc,
    origin,
    url: `${origin}/v1/mcp`,
    linesWith: (text) => proc.output().split("\n").filter((line) => line.includes(text)),
    close: async () => {
      await proc.kill("SIGTERM")
    }
  }
}
