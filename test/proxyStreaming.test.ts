/**
 * Bodies stream through the HTTP connector proxy: a 1 GiB download and a 512 MiB upload pass
 * through the gateway while its resident memory stays flat. The gateway runs as its own
 * process (the CLI, as users run it), so its RSS is measured alone and it gets a core of its
 * own; the upstream generates the bytes from one reused buffer and the client discards them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Readable } from "node:stream"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { repoRoot, spawnProcess, type Spawned } from "./helpers/processes.js"

const GiB = 1024 * 1024 * 1024
const MiB = 1024 * 1024
/** Headroom for GC timing and socket buffers; buffering the body would take ≥ 1 GiB. */
const MAX_RSS_GROWTH = 200 * MiB

let upstream: HttpUpstream
let gateway: Spawned
let origin: string

let configDir: string | undefined

beforeAll(async () => {
  upstream = await startHttpUpstream()
  // Aperture JSON, so the config needs no import of the package from a temporary directory.
  configDir = mkdtempSync(join(tmpdir(), "aperture-stream-"))
  const config = join(configDir, "aperture.json")
  writeFileSync(config, JSON.stringify({
    connectors: { servers: { files: { protocol: "http", url: `${upstream.origin}/api`, allowPrivate: true } } },
    grants: [{ src: ["local"], app: { "tailscale.com/cap/aperture": [{ connectors: ["files/proxy/**"] }] } }]
  }))
  gateway = spawnProcess(process.execPath, [join(repoRoot, "bin/aperture.js"), "start", "--config", config, "--port", "0"])
  const listening = await gateway.waitFor(/listening on http:\/\/[^/\s]+/)
  origin = listening.replace("listening on ", "")
})

afterAll(async () => {
  await gateway?.kill()
  await upstream?.close()
  if (configDir !== undefined) rmSync(configDir, { recursive: true, force: true })
})

/** The gateway process's resident set size (Linux). */
const gatewayRss = () => {
  const status = readFileSync(`/proc/${gateway.child.pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
}

/** Samples the gateway's RSS every 50 ms while `run` runs; returns the peak growth over the start. */
const peakRssGrowth = async <A>(run: () => Promise<A>): Promise<{ readonly result: A; readonly growth: number; readonly seconds: number }> => {
  const start = gatewayRss()
  let peak = start
  const timer = setInterval(() => {
    peak = Math.max(peak, gatewayRss())
  }, 50)
  const began = performance.now()
  try {
    const result = await run()
    peak = Math.max(peak, gatewayRss())
    return { result, growth: peak - start, seconds: (performance.now() - began) / 1000 }
  } finally {
    clearInterval(timer)
  }
}

/** Streams a generated body of `total` bytes from one reused buffer. */
const generated = (total: number) => {
  const chunk = Buffer.alloc(MiB, 0x62)
  let left = total
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null)
      const n = Math.min(left, chunk.length)
      left -= n
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n))
    }
  })
}

describe("streaming through the proxy", () => {
  it("downloads 1 GiB with flat memory", async () => {
    const url = new URL(`${origin}/v1/connectors/files/big?bytes=${GiB}`)
    const { growth, result: bytes, seconds } = await peakRssGrowth(() =>
      new Promise<number>((resolve, reject) => {
        request(url, { agent: false }, (res) => {
          expect(res.statusCode).toBe(200)
          expect(res.headers["content-length"]).toBe(String(GiB))
          let received = 0
          res.on("data", (chunk: Buffer) => {
            received += chunk.length
          })
          res.on("end", () => resolve(received))
          res.on("error", reject)
        }).on("error", reject).end()
      })
    )
    console.log(`1 GiB download through the proxy: ${seconds.toFixed(1)} s, peak RSS growth ${(growth / MiB).toFixed(0)} MiB`)
    expect(bytes).toBe(GiB)
    expect(growth).toBeLessThan(MAX_RSS_GROWTH)
  }, 120_000)

  it("uploads 512 MiB with flat memory, streamed to the upstream", async () => {
    const total = 512 * MiB
    const { growth, result, seconds } = await peakRssGrowth(() =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(new URL(`${origin}/v1/connectors/files/upload`), {
          method: "PUT",
          agent: false,
          headers: { "content-type": "application/octet-stream" }
        }, (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
        })
        req.on("error", reject)
        generated(total).pipe(req)
      })
    )
    console.log(`512 MiB upload through the proxy: ${seconds.toFixed(1)} s, peak RSS growth ${(growth / MiB).toFixed(0)} MiB`)
    expect(result.status).toBe(200)
    expect(JSON.parse(result.body)).toMatchObject({ method: "PUT", url: "/api/upload", bodyBytes: total })
    expect(upstream.seen.at(-1)?.headers["transfer-encoding"]).toBe("chunked")
    expect(growth).toBeLessThan(MAX_RSS_GROWTH)
  }, 120_000)
})
