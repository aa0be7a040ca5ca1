/**
 * JSONC / HuJSON: JSON with comments and trailing commas, as the original's config allows.
 * @module
 */

/** Removes comments and trailing commas outside strings, keeping offsets (comments become spaces). */
export const stripJsonc = (text: string): string => {
  let out = ""
  let i = 0
  let inString = false
  while (i < text.length) {
    const ch = text[i]!
    const next = text[i + 1]
    if (inString) {
      out += ch
      if (ch === "\\") {
        out += next ?? ""
        i += 2
        continue
      }
      if (ch === "\"") inString = false
      i++
      continue
    }
    if (ch === "\"") {
      inString = true
      out += ch
      i++
    } else if (ch === "/" && next === "/") {
      while (i < text.length && text[i] !== "\n") {
        out += " "
        i++
      }
    } else if (ch === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2)
      const stop = end === -1 ? text.length : end + 2
      out += text.slice(i, stop).replace(/[^\n]/g, " ")
      i = stop
    } else if (ch === ",") {
      // Trailing comma: the next significant character closes an object or array.
      let j = i + 1
      while (j < text.length) {
        if (/\s/.test(text[j]!)) j++
        else if (text[j] === "/" && text[j + 1] === "/") {
          while (j < text.length && text[j] !== "\n") j++
        } else if (text[j] === "/" && text[j + 1] === "*") {
          const end = text.indexOf("*/", j + 2)
          j = end === -1 ? text.length : end + 2
        } else break
      }
      out += text[j] === "}" || text[j] === "]" ? " " : ","
      i++
    } else {
      out += ch
      i++
    }
  }
  return out
}

/** Parses JSONC; on a syntax error the message names line and column. */
export const parseJsonc = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly message: string } => {
  const stripped = stripJsonc(text)
  try {
    return { ok: true, value: JSON.parse(stripped) }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const position = /position (\d+)/.exec(message)
    if (position) {
      const offset = Number(position[1])
      const before = stripped.slice(0, offset)
      const line = before.split("\n").length
      const column = offset - before.lastIndexOf("\n")
      return { ok: false, message: `${message.replace(/ in JSON at position \d+.*$/, "")} at line ${line}, column ${column}` }
    }
    return { ok: false, message }
  }
}
