// A connector whose upstream wants every request HMAC-signed, with the custom plugin in
// ./hmacSigned.ts. `main.ts` runs the upstream and this config in one process; or start the
// upstream, then the gateway:
//   HMAC_SECRET=change-me PORT=9100 node --import tsx examples/custom-auth-plugin/signedUpstream.ts
//   HMAC_SECRET=change-me npx aperture start --config examples/custom-auth-plugin/aperture.config.ts
import { defineConfig, env, grant, mcp } from "aperture"
import { hmacSigned } from "./hmacSigned.js"

export default defineConfig({
  connectors: {
    signed: mcp({
      url: process.env["SIGNED_UPSTREAM_URL"] ?? "http://127.0.0.1:9100/mcp",
      auth: hmacSigned({ keyId: process.env["HMAC_KEY_ID"] ?? "example", secret: env("HMAC_SECRET") })
    })
  },
  grants: [grant({ src: ["local"], connectors: ["signed/**"] })]
})
