/**
 * A result "schema" that accepts the upstream's JSON as it is, so results reach the caller
 * exactly as the upstream sent them (no field stripped by the SDK's own result schemas).
 * @module
 */
import type { StandardSchemaV1 } from "@modelcontextprotocol/client"

export const passthrough: StandardSchemaV1<unknown, Record<string, unknown>> = {
  "~standard": {
    version: 1,
    vendor: "aperture",
    validate: (value) =>
      typeof value === "object" && value !== null && !Array.isArray(value)
        ? { value: value as Record<string, unknown> }
        : { issues: [{ message: "expected a JSON object result" }] }
  }
}
