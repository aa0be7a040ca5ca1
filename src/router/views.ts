/**
 * What one caller may see of the catalog: the index filtered by that caller's grants, computed
 * once per (catalog version, set of grants held) and shared by every caller holding the same
 * grants. Lists are paginated from here with an opaque cursor.
 * @module
 */
import { createHash } from "node:crypto"
import type { CatalogSnapshot } from "../catalog/Catalog.js"
import { allowed } from "../catalog/entryGrant.js"
import type { IndexEntry, UpstreamItem } from "../catalog/index.js"
import type { CallerPolicy } from "../grants/policy.js"

export interface CallerView {
  readonly tools: ReadonlyArray<UpstreamItem>
  readonly prompts: ReadonlyArray<UpstreamItem>
  readonly resources: ReadonlyArray<UpstreamItem>
  readonly templates: ReadonlyArray<UpstreamItem>
  /** Content fingerprints, to tell whether a caller's visible list really changed. */
  readonly fingerprints: { readonly tools: string; readonly prompts: string; readonly resources: string }
}

const fingerprint = (...lists: ReadonlyArray<ReadonlyArray<UpstreamItem>>) =>
  createHash("sha1").update(JSON.stringify(lists)).digest("base64")

const cache = new WeakMap<CatalogSnapshot, Map<string, CallerView>>()

/** The caller's view of this snapshot (cached). */
export const callerView = (snapshot: CatalogSnapshot, policy: CallerPolicy): CallerView => {
  let byPolicy = cache.get(snapshot)
  if (byPolicy === undefined) {
    byPolicy = new Map()
    cache.set(snapshot, byPolicy)
  }
  let view = byPolicy.get(policy.key)
  if (view === undefined) {
    const pick = (entries: ReadonlyArray<IndexEntry>) => entries.filter((e) => allowed(policy, e)).map((e) => e.exposed)
    const tools = pick(snapshot.index.tools)
    const prompts = pick(snapshot.index.prompts)
    const resources = pick(snapshot.index.resources)
    const templates = pick(snapshot.index.templates)
    let fingerprints: CallerView["fingerprints"] | undefined
    view = {
      tools,
      prompts,
      resources,
      templates,
      // Computed on first use only: listing does not need it.
      get fingerprints() {
        return fingerprints ??= {
          tools: fingerprint(tools),
          prompts: fingerprint(prompts),
          resources: fingerprint(resources, templates)
        }
      }
    }
    byPolicy.set(policy.key, view)
  }
  return view
}

/** Page size of every list at `/v1/mcp`; large, because many clients never follow `nextCursor`. */
export const PAGE_SIZE = 1000

/** One page of a list, with the cursor of the next page if there is one; `undefined` for an invalid cursor. */
export const page = <T>(
  items: ReadonlyArray<T>,
  cursor: string | undefined
): { readonly items: ReadonlyArray<T>; readonly nextCursor: string | undefined } | undefined => {
  const offset = cursor === undefined ? 0 : offsetOf(cursor)
  if (offset === undefined) return undefined
  if (offset === 0 && items.length <= PAGE_SIZE) return { items, nextCursor: undefined }
  const end = offset + PAGE_SIZE
  return {
    items: items.slice(offset, end),
    nextCursor: end < items.length ? cursorAt(end) : undefined
  }
}

/** One page as a list result: `{ "<resultKey>": […], "nextCursor"?: … }`; `undefined` for an invalid cursor. */
export const pageResult = (items: ReadonlyArray<unknown>, cursor: string | undefined, resultKey: string): Record<string, unknown> | undefined => {
  const result = page(items, cursor)
  return result === undefined
    ? undefined
    : { [resultKey]: result.items, ...(result.nextCursor !== undefined && { nextCursor: result.nextCursor }) }
}

const cursorAt = (offset: number) => Buffer.from(`o${offset}`, "latin1").toString("base64url")

/** The offset a cursor stands for; `undefined` if it is not one of ours. */
const offsetOf = (cursor: string): number | undefined => {
  const decoded = /^o(\d{1,9})$/.exec(Buffer.from(cursor, "base64url").toString("latin1"))
  return decoded === null ? undefined : Number(decoded[1])
}

/** Whether `cursor` is one {@link page} hands out for a list of `length` items (only those are cached). */
const isIssuedCursor = (cursor: string, length: number) => {
  const offset = offsetOf(cursor)
  return offset !== undefined && offset > 0 && offset % PAGE_SIZE === 0 && offset < length && cursorAt(offset) === cursor
}

const encodedPages = new WeakMap<ReadonlyArray<unknown>, Map<string, Buffer>>()

/**
 * One page of a list as the UTF-8 JSON of its result (`{"<resultKey>":[…],"nextCursor":…}`),
 * encoded once per (list, cursor): a caller view's lists change only with the catalog, so a
 * warm `tools/list` re-serialises and re-encodes nothing (UTF-8 encoding alone was an eighth of
 * the gateway's time per 200 KB page). Only the cursors {@link page} issues are cached (a caller
 * inventing offsets cannot grow the cache). `undefined` for an invalid cursor.
 */
export const encodedPage = (items: ReadonlyArray<unknown>, cursor: string | undefined, resultKey: string): Buffer | undefined => {
  const key = cursor === undefined ? resultKey : `${resultKey}\u0000${cursor}`
  let pages = encodedPages.get(items)
  const cached = pages?.get(key)
  if (cached !== undefined) return cached
  const result = pageResult(items, cursor, resultKey)
  if (result === undefined) return undefined
  const text = Buffer.from(JSON.stringify(result))
  if (cursor === undefined || isIssuedCursor(cursor, items.length)) {
    if (pages === undefined) encodedPages.set(items, pages = new Map())
    pages.set(key, text)
  }
  return text
}
