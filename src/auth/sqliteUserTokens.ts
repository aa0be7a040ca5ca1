/**
 * The embedded {@link UserTokens} store: one SQLite file, `user-tokens.sqlite`, in the gateway's
 * state directory (created 0700; the file 0600), in WAL mode so a reader never waits on a
 * writer and a crash loses at most the write in flight. Rows hold only sealed values (see
 * ./userTokens.ts). better-sqlite3 is synchronous; a statement takes microseconds, so calls run
 * inline rather than on a thread. The database is closed when the scope closes.
 * @module
 */
import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { makeTokenSeal, type Sealed, type UserTokensService, UserTokensUnavailable } from "./userTokens.js"

/** The database's file name inside the state directory. */
export const USER_TOKENS_FILE = "user-tokens.sqlite"
/** How long a write waits for another process holding the file's write lock (a second gateway on one directory). */
const BUSY_TIMEOUT_MS = 2_000

const SCHEMA = `
CREATE TABLE IF NOT EXISTS user_tokens (
  login TEXT NOT NULL,
  connector TEXT NOT NULL,
  ciphertext BLOB NOT NULL,
  iv BLOB NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (connector, login)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_tokens_by_login ON user_tokens (login);
CREATE TABLE IF NOT EXISTS connector_registrations (
  connector TEXT PRIMARY KEY,
  ciphertext BLOB NOT NULL,
  iv BLOB NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
`

export interface SqliteUserTokensOptions {
  /** The gateway's state directory; created (0700) when missing. */
  readonly stateDir: string
  /** The config's `secretKey`: grants are sealed under keys derived from it. */
  readonly secretKey: Redacted.Redacted<string>
}

interface SealedRow {
  readonly iv: Buffer
  readonly ciphertext: Buffer
}

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** Opens (creating when missing) the store in `stateDir`; closed with the scope. */
export const makeSqliteUserTokens = (
  options: SqliteUserTokensOptions
): Effect.Effect<UserTokensService, UserTokensUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const file = join(options.stateDir, USER_TOKENS_FILE)
    const failed = (error: unknown) => new UserTokensUnavailable({ reason: `${file}: ${reasonOf(error)}` })
    const { Database } = yield* Effect.tryPromise({ try: () => import("./sqliteModule.js"), catch: failed })
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          mkdirSync(options.stateDir, { recursive: true, mode: 0o700 })
          // Created 0600 before SQLite opens it (its -wal and -shm files take the same mode),
          // and tightened if it was made looser: it holds every user's sealed tokens.
          closeSync(openSync(file, "a", 0o600))
          chmodSync(file, 0o600)
          const db = new Database(file, { timeout: BUSY_TIMEOUT_MS })
          try {
            db.pragma("journal_mode = WAL")
            db.pragma("synchronous = NORMAL")
            db.exec(SCHEMA)
          } catch (error) {
            db.close()
            throw error
          }
          return db
        },
        catch: failed
      }),
      (db) => Effect.sync(() => db.close())
    )

    const selectGrant = db.prepare<[string, string], SealedRow>("SELECT iv, ciphertext FROM user_tokens WHERE connector = ? AND login = ?")
    const upsertGrant = db.prepare<[string, string, Buffer, Buffer, number]>(
      `INSERT INTO user_tokens (login, connector, ciphertext, iv, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (connector, login) DO UPDATE SET ciphertext = excluded.ciphertext, iv = excluded.iv, updated_at = excluded.updated_at`
    )
    const deleteGrant = db.prepare<[string, string]>("DELETE FROM user_tokens WHERE connector = ? AND login = ?")
    const selectUsersOf = db.prepare<[string], { readonly login: string }>(
      "SELECT login FROM user_tokens WHERE connector = ? ORDER BY updated_at DESC"
    )
    const selectGrantsOf = db.prepare<[string], SealedRow & { readonly connector: string }>(
      "SELECT connector, iv, ciphertext FROM user_tokens WHERE login = ?"
    )
    const selectRegistration = db.prepare<[string], SealedRow>("SELECT iv, ciphertext FROM connector_registrations WHERE connector = ?")
    const upsertRegistration = db.prepare<[string, Buffer, Buffer, number]>(
      `INSERT INTO connector_registrations (connector, ciphertext, iv, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (connector) DO UPDATE SET ciphertext = excluded.ciphertext, iv = excluded.iv, updated_at = excluded.updated_at`
    )

    const tokenSeal = makeTokenSeal(options.secretKey)
    const run = <A>(statement: () => A) => Effect.try({ try: statement, catch: failed })
    const sealedOf = (row: SealedRow): Sealed => ({ iv: row.iv, body: row.ciphertext })
    /** The opened value, or `undefined` with the connector's one warning when a stored value does not open. */
    const opened = <A>(connectorId: string, row: SealedRow | undefined, openRow: (sealed: Sealed) => A | undefined) => {
      if (row === undefined) return Effect.succeed(undefined)
      const value = openRow(sealedOf(row))
      return value === undefined ? Effect.as(tokenSeal.warnUndecryptable(connectorId), undefined) : Effect.succeed(value)
    }

    const service: UserTokensService = {
      kind: "sqlite",
      get: (login, connectorId) =>
        Effect.flatMap(
          run(() => selectGrant.get(connectorId, login)),
          (row) => opened(connectorId, row, (sealed) => tokenSeal.openGrant(login, connectorId, sealed))
        ),
      put: (login, connectorId, grant) =>
        run(() => {
          const { body, iv } = tokenSeal.sealGrant(login, connectorId, grant)
          upsertGrant.run(login, connectorId, body, iv, Date.now())
        }),
      delete: (login, connectorId) => Effect.asVoid(run(() => deleteGrant.run(connectorId, login))),
      connectorsOf: (login, connectorIds) =>
        Effect.flatMap(run(() => selectGrantsOf.all(login)), (rows) => {
          const stored = new Map(rows.map((row) => [row.connector, row]))
          return Effect.filter(connectorIds, (connectorId) => {
            const row = stored.get(connectorId)
            return Effect.map(
              opened(connectorId, row, (sealed) => tokenSeal.openGrant(login, connectorId, sealed)),
              (grant) => grant !== undefined
            )
          })
        }),
      usersOf: (connectorId) => run(() => selectUsersOf.all(connectorId).map((row) => row.login)),
      getRegistration: (connectorId) =>
        Effect.flatMap(
          run(() => selectRegistration.get(connectorId)),
          (row) => opened(connectorId, row, (sealed) => tokenSeal.openRegistration(connectorId, sealed))
        ),
      putRegistration: (connectorId, registration) =>
        run(() => {
          const { body, iv } = tokenSeal.sealRegistration(connectorId, registration)
          upsertRegistration.run(connectorId, body, iv, Date.now())
        })
    }
    return service
  })
