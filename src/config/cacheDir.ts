/**
 * Where Aperture keeps what it can rebuild: the transpiled config (jiti) and, on Node 22+, V8's
 * compiled code for the CLI (`module.enableCompileCache`). Both take ~0.1–0.2 s off a restart.
 *
 * It is `$XDG_CACHE_HOME/aperture/<name>` (else `~/.cache/aperture/<name>`), created private
 * (0700): never a shared temporary directory, where another local user could plant a file
 * under the predictable name and have it run inside the gateway, next to its secrets. When the
 * directory cannot be made or written (a read-only home in a container), nothing is cached.
 * A transpiled config holds whatever the config file holds, inline secrets included: an
 * `aperture` directory left more open (an older tool, a manual `mkdir`) is closed to `0700`, and
 * one owned by another user is not used. Deleting it is always safe.
 *
 * Plain Node, no dependencies: `bin/aperture.js` imports it before the CLI's bundle loads.
 * @module
 */
import { accessSync, chmodSync, constants, mkdirSync, statSync } from "node:fs"
import { homedir } from "node:os"
import * as path from "node:path"

export const cacheDir = (name: string): string | undefined => {
  try {
    const xdg = process.env["XDG_CACHE_HOME"]
    const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(homedir(), ".cache")
    if (!path.isAbsolute(base)) return undefined
    const root = path.join(base, "aperture")
    const dir = path.join(root, name)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const owner = statSync(root)
    if (typeof process.getuid === "function" && owner.uid !== process.getuid()) return undefined
    if ((owner.mode & 0o077) !== 0) chmodSync(root, 0o700)
    accessSync(dir, constants.W_OK)
    return dir
  } catch {
    return undefined
  }
}
