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

/**
 * Where strict JSON `text` first goes wrong, and what is wrong there, found by scanning it. The
 * message never quotes the input: JSON.parse's own message may carry a snippet of it (Node 20:
 * `Unexpected token 'g', ..."secret": ghp_SUPERS"...`), i.e. part of a secret, and this message
 * reaches `GET /api/config`, the reload log line and `aperture check`.
 */
const syntaxErrorIn = (text: string): { readonly offset: number; readonly what: string } => {
  let i = 0
  const fail = (what: string, at = i): never => {
    throw { offset: at, what }
  }
  const space = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++
  }
  const expectChar = (ch: string, what: string) => {
    if (text[i] !== ch) fail(i >= text.length ? "unexpected end of input" : what)
    i++
  }
  const string = () => {
    const start = i
    i++
    while (i < text.length && text[i] !== "\"") {
      const ch = text[i]!
      if (ch < " ") fail("a control character inside a string")
      if (ch === "\\") {
        const escape = text[i + 1]
        if (escape === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail("a bad \\u escape in a string")
          i += 6
          continue
        }
        if (escape === undefined || !"\"\\/bfnrt".includes(escape)) fail("a bad escape in a string")
        i += 2
        continue
      }
      i++
    }
    if (i >= text.length) fail("a string that is not closed", start)
    i++
  }
  const value = (): void => {
    space()
    const ch = text[i]
    if (ch === undefined) return fail("unexpected end of input")
    if (ch === "{") {
      i++
      space()
      if (text[i] === "}") {
        i++
        return
      }
      for (;;) {
        space()
        if (text[i] !== "\"") fail(i >= text.length ? "unexpected end of input" : "expected a quoted property name")
        string()
        space()
        expectChar(":", "expected ':' after a property name")
        value()
        space()
        if (text[i] === ",") {
          i++
          continue
        }
        expectChar("}", "expected ',' or '}' after a property's value")
        return
      }
    }
    if (ch === "[") {
      i++
      space()
      if (text[i] === "]") {
        i++
        return
      }
      for (;;) {
        value()
        space()
        if (text[i] === ",") {
          i++
          continue
        }
        expectChar("]", "expected ',' or ']' after an array element")
        return
      }
    }
    if (ch === "\"") return string()
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400))
    if (literal === null) return fail("expected a value (a quoted string, a number, true, false, null, an object or an array)")
    i += literal[0].length
  }
  try {
    value()
    space()
    if (i < text.length) fail("unexpected text after the value")
  } catch (error) {
    if (typeof error === "object" && error !== null && "offset" in error) return error as { offset: number; what: string }
    throw error
  }
  // JSON.parse refused what the scan accepts (it should not happen): say so without the input.
  return { offset: 0, what: "not valid JSON" }
}

/** Parses JSONC; a syntax error says what and where (line, column), never the input's text (it may be a secret). */
export const parseJsonc = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly message: string } => {
  const stripped = stripJsonc(text)
  try {
    return { ok: true, value: JSON.parse(stripped) }
  } catch {
    const { offset, what } = syntaxErrorIn(stripped)
    const before = stripped.slice(0, offset)
    const line = before.split("\n").length
    const column = offset - before.lastIndexOf("\n")
    return { ok: false, message: `not valid JSON: ${what} at line ${line}, column ${column}` }
  }
}
