// The demo: the official MCP "everything" server behind the gateway, for the local user.
// `npm start` serves it at http://127.0.0.1:8080/v1/mcp; its tools appear as everything_<name>.
import { defineConfig, grant, loopback, stdio } from "aperture"

export default defineConfig({
  server: { host: "127.0.0.1", port: 8080 },
  connectors: {
    everything: stdio({
      // Same as `npx @modelcontextprotocol/server-everything stdio`, without npx's start-up cost.
      command: process.execPath,
      args: ["node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"],
      cwd: ".",
      description: "The MCP reference server that exercises every protocol feature"
    })
  },
  identity: [loopback({ login: "local" })],
  grants: [grant({ src: ["local"], connectors: ["**"] })]
})
