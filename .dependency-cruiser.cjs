/**
 * The import rules of the codebase, checked in `npm test` (test/dependencies.test.ts runs
 * `depcruise`). The request path runs top to bottom, and a folder imports only from folders
 * below it:
 *
 *   cli, Aperture.ts, index.ts        the composition root: builds the layers, registers built-ins
 *   edge/                             HTTP routes: what answers each path
 *   endpoint/  proxy/  admin/         /v1/mcp (era2025/, era2026/), /v1/connectors, /api and pages
 *   router/                           lists, calls, subscriptions, caller views
 *   relay/                            the hot path: a call forwarded to its upstream and back
 *   upstream/                         connections to MCP upstreams, one supervised fiber each
 *   catalog/ grants/ identity/ auth/ audit/ metrics/   what the layers above consult
 *   telemetry/                        (same row) OpenTelemetry export: the service the router and
 *                                     the proxy look up once to trace requests (absent when off)
 *   cluster/                          (same row) shared state for several replicas: the Redis
 *                                     connection, consulted by upstream/, endpoint/, admin/
 *   config/                           the config language: model, decoding, grant patterns
 *   plugin/  http/                    leaves: the plugin kernel (auth and identity plugin
 *                                     interfaces), HTTP plumbing
 *
 * `plugins/` (built-in auth and identity plugins) is imported only by the composition root.
 */
const layers = [
  ["^src/(cli/|Aperture\\.ts$|index\\.ts$)"],
  ["^src/edge/"],
  ["^src/endpoint/", "^src/proxy/", "^src/admin/"],
  ["^src/router/"],
  ["^src/relay/"],
  ["^src/upstream/"],
  ["^src/catalog/", "^src/grants/", "^src/identity/", "^src/auth/", "^src/audit/", "^src/metrics/", "^src/cluster/", "^src/telemetry/"],
  ["^src/config/"],
  ["^src/plugin/", "^src/http/"]
]

const above = (index) => layers.slice(0, index).flat()
const layerRules = layers.flatMap((group, index) =>
  index === 0 ? [] : group.map((from) => ({
    name: `no-upward-from-${from.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "")}`,
    comment: "a folder imports only from the folders below it on the request path (see the header)",
    severity: "error",
    from: { path: from },
    to: { path: above(index) }
  })))

// Within one row, folders do not import each other either (endpoint/ and proxy/ are siblings),
// except the leaves below the row that consult each other through types.
const siblingRules = layers.slice(1, 4).flatMap((group) =>
  group.length < 2 ? [] : group.map((from) => ({
    name: `no-sibling-from-${from.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "")}`,
    severity: "error",
    from: { path: from },
    to: { path: group.filter((other) => other !== from) }
  })))

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "no import cycles between files (type-only imports count: a cycle is a design knot)",
      severity: "error",
      from: {},
      to: { circular: true }
    },
    {
      name: "src-not-plugins",
      comment: "src/ does not import plugins/: built-ins are registered at the composition root",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(Aperture|index)\\.ts$|\\.test\\.ts$" },
      to: { path: "^plugins/" }
    },
    ...layerRules,
    ...siblingRules
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.test\\.ts$|^test/|^bench/|^examples/" },
    includeOnly: "^(src|plugins)/"
  }
}
