/**
 * `GET /api/config` → `{ config, hash, editable }` and `PUT /api/config` with `{ config, hash }`:
 * the config file `aperture start` runs from, read and replaced by admins only (others 403, as
 * `/metrics`). A PUT is refused with 409 when the file changed since its `hash` was read, with 400
 * and every problem with its path when the config is invalid (the running one stays); otherwise
 * it is written atomically and applied as a reload is. Literal secrets read as `"********"`, and
 * a PUT carrying that placeholder keeps the value the file holds while the connector's destination
 * is unchanged, and names only environment variables the file references (config/jsonSecrets.ts).
 * A TS config is shown by hash only and edited in an editor (PUT: 405).
 * @module
 */
import * as path from "node:path"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { ConfigFile, type ConfigFileService, parseConfigText } from "../config/ConfigFile.js"
import { maskSecrets, restoreSecrets } from "../config/jsonSecrets.js"
import type { LiveConfigService } from "../config/LiveConfig.js"
import type { ConfigIssue } from "../config/model.js"
import type { GrantPolicy } from "../grants/GrantPolicy.js"
import type { AdminGate } from "./caller.js"

const FORBIDDEN = "forbidden: /api/config needs a grant with role \"admin\""

const json = (body: unknown, status: number, headers?: Record<string, string>) =>
  HttpServerResponse.unsafeJson(body, { status, ...(headers !== undefined && { headers }) })

const noFile = json({
  error: "no_config_file",
  message: "this gateway was not started from a config file (it is embedded): the host program applies a new config with Aperture.reload"
}, 404)

const tsMessage = (file: ConfigFileService) =>
  `${path.basename(file.path)} is a TypeScript config: edit it in your editor; aperture start reloads it when it is saved (or on SIGHUP)`

const invalid = (issues: ReadonlyArray<ConfigIssue>, message: string) =>
  json({ error: "invalid_config", message, issues: issues.map(({ message, path }) => ({ path, message })) }, 400)

const badRequest = (message: string) => json({ error: "invalid_request", message }, 400)

export const configApi = (
  configFile: Option.Option<ConfigFileService>,
  live: LiveConfigService,
  grants: GrantPolicy,
  gate: AdminGate
) => {
  /** The admin asking, or the response refusing them. */
  const admitted = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.map(gate.caller(request), (caller) =>
      caller._tag === "Left" ? caller.left : grants.isAdmin(caller.right) ? undefined : json({ error: FORBIDDEN }, 403))

  const get = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const refused = yield* admitted(request)
      if (refused !== undefined) return refused
      if (Option.isNone(configFile)) return noFile
      const file = configFile.value
      const { hash, text } = yield* file.read
      if (!file.editable) return json({ hash, editable: false, message: tsMessage(file) }, 200)
      const value = yield* parseConfigText(file.path, text)
      return json({ config: maskSecrets(value), hash, editable: true }, 200)
    }).pipe(
      Effect.catchAll((error) => Effect.succeed(json({ error: "unreadable_config", message: error.message }, 500))),
      Effect.withSpan("ConfigApi.get")
    )

  const put = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const refused = yield* admitted(request)
      if (refused !== undefined) return refused
      if (Option.isNone(configFile)) return noFile
      const file = configFile.value
      if (!file.editable) return json({ error: "not_editable", message: tsMessage(file) }, 405, { allow: "GET" })
      const body = yield* Effect.either(request.json)
      if (body._tag === "Left") return badRequest("the body is not JSON: send { \"config\": {…}, \"hash\": \"<the hash GET /api/config answered>\" }")
      const { config, hash } = (typeof body.right === "object" && body.right !== null ? body.right : {}) as Record<string, unknown>
      if (typeof hash !== "string") return badRequest("hash: required, the hash GET /api/config answered (it guards against overwriting a change made since)")
      if (typeof config !== "object" || config === null || Array.isArray(config)) {
        return badRequest("config: required, the whole config as a JSON object (as GET /api/config answers it)")
      }
      return yield* file.exclusive(Effect.gen(function*() {
        const current = yield* file.read
        if (current.hash !== hash) {
          return json({
            error: "stale_hash",
            message: "the config file changed since that hash was read: GET /api/config again and make the change on what it answers",
            hash: current.hash
          }, 409)
        }
        const restored = restoreSecrets(config, yield* parseConfigText(file.path, current.text))
        if (restored.issues.length > 0) return invalid(restored.issues, "invalid config: nothing was changed")
        const decoded = yield* Effect.either(file.decodeJson(restored.value))
        if (decoded._tag === "Left") {
          const error = decoded.left
          return error._tag === "ConfigInvalid"
            ? invalid(error.issues, `invalid config (${error.issues.length} ${error.issues.length === 1 ? "problem" : "problems"}): nothing was changed`)
            : badRequest(error.message)
        }
        const written = yield* file.write(`${JSON.stringify(restored.value, null, 2)}\n`)
        // The watcher will see the file change to this content: already applied, so not again.
        file.setAppliedHash(written)
        const applied = yield* live.apply(decoded.right, { hash: written })
        yield* Effect.logInfo(`config written to ${file.path} by PUT /api/config`)
        const { added, changed, removed } = applied.change.connectors
        return json({
          hash: written,
          applied: {
            summary: applied.summary,
            connectors: { added: added.map((c) => c.id), removed: removed.map((c) => c.id), changed: changed.map((c) => c.id) },
            grantsChanged: applied.change.grantsChanged,
            identityChanged: applied.change.identityChanged,
            needsRestart: applied.change.needsRestart
          }
        }, 200)
      }))
    }).pipe(
      Effect.catchAll((error) => Effect.succeed(json({ error: "config_write_failed", message: error.message }, 500))),
      Effect.withSpan("ConfigApi.put")
    )

  return { get, put }
}

/** The config file, when the gateway runs from one (`aperture start`). */
export const configFileIfAny = Effect.serviceOption(ConfigFile)
