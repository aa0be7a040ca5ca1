/**
 * `--telemetry`: where the gateways under benchmark export their OpenTelemetry traces and
 * metrics (OTLP/HTTP). It reads each export and answers it, counting exports and bytes, without
 * decoding them: what is measured is the gateway's cost of tracing, not a collector's.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export interface OtlpSink {
  readonly url: string
  readonly counts: () => { readonly traces: number; readonly metrics: number; readonly bytes: number }
  readonly close: () => Promise<void>
}

export const startOtlpSink = async (): Promise<OtlpSink> => {
  let traces = 0
  let metrics = 0
  let bytes = 0
  const server = createServer((req, res) => {
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length
    })
    req.on("end", () => {
      if (req.url === "/v1/traces") traces++
      else if (req.url === "/v1/metrics") metrics++
      // An empty Export*ServiceResponse is zero bytes of protobuf.
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts: () => ({ traces, metrics, bytes }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
