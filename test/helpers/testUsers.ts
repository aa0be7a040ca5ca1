// An identity plugin for tests with several callers: each caller is the login in its
// `x-test-user` header (a request without one falls through to the next plugin).
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { defineIdentityPlugin } from "../../src/index.js"

export const testUsers = defineIdentityPlugin({
  name: "testUsers",
  options: Schema.Struct({}),
  make: () =>
    Effect.succeed({
      identify: (request) => {
        const login = request.headers["x-test-user"]
        return Effect.succeed(login === undefined ? undefined : { login, groups: [], tags: [], via: "testUsers" })
      }
    })
})
