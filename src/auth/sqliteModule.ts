/**
 * better-sqlite3, behind a module of ours so the embedded user-token store loads it (a native
 * addon) only when it is built: a gateway without per-user connectors never pays for it.
 * @module
 */
export { default as Database } from "better-sqlite3"
