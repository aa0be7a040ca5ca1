// Types for the two undici modules upstreamFetch.ts imports directly (undici has no `exports`
// map, and ships types only for its index). The version is pinned exactly in package.json.
declare module "undici/lib/dispatcher/agent.js" {
  import { Agent } from "undici"
  export default Agent
}

declare module "undici/lib/api/api-request.js" {
  import type { Dispatcher } from "undici"
  const request: (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>
  export default request
}
