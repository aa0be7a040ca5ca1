// The smallest useful gateway: one local MCP server and one REST API, both granted to you.
// Run from the repository root: node bin/aperture.js start --config examples/basic/aperture.config.ts
import { defineConfig, grant, http, loopback, stdio } from "aperture"

export default defineConfig({
  // PORT lets the example run next to another gateway on 8080.
  server: { host: "127.0.0.1", port: Number(process.env["PORT"] ?? 8080) },
  connectors: {
    // The official MCP reference server as a supervised child process; its tools appear as everything_<name>.
    everything: stdio({
      command: process.execPath,
      args: ["node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"],
      cwd: "../..", // relative to this file: the repository root
      description: "The MCP reference server"
    }),
    // A REST API behind /v1/connectors/github/<path>; public endpoints need no token.
    github: http({ url: "https://api.github.com", description: "GitHub REST API (read-only here)", methods: ["GET", "HEAD"] })
  },
  // Every connection from this machine is the caller "local".
  identity: [loopback({ login: "local" })],
  grants: [
    // All of everything's tools, prompts and resources; GitHub's API under /repos only.
    grant({ src: ["local"], connectors: ["everything/**", "github/proxy/repos/**"] })
  ]
})
