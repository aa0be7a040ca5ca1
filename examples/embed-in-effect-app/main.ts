/**
 * An Effect program that serves its own routes and the whole Aperture gateway on one server:
 * `Aperture.layer(config)` joins the program's `HttpLayerRouter`, so `/hello` (the program's)
 * and `/v1/mcp`, `/v1/connectors/…`, `/api/connectors`, `/` (Aperture's) share one port, one
 * scope and one shutdown.
 */
import { createServer } from "node:http"
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { Aperture, defineConfig, grant, loopback, stdio } from "aperture"

const port = Number(process.env["PORT"] ?? 3000)

const gateway = defineConfig({
  connectors: {
    everything: stdio({
      command: process.execPath,
      args: ["node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"]
    })
  },
  identity: [loopback({ login: "local" })],
  grants: [grant({ src: ["local"], connectors: ["everything/tools/*"] })]
})

/** The program's own route. */
const Hello = HttpLayerRouter.add(
  "GET",
  "/hello",
  HttpServerResponse.json({ hello: "from the host program", mcp: `http://127.0.0.1:${port}/v1/mcp` })
)

const App = HttpLayerRouter.serve(Layer.mergeAll(Hello, Aperture.layer(gateway))).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port }))
)

// Runs until SIGINT/SIGTERM; then Aperture drains calls in flight and stops its upstreams.
NodeRuntime.runMain(Layer.launch(App))
