/**
 * A bound on how deeply a JSON body nests, checked on the raw bytes before JSON.parse runs
 * (issue 12 §2). JSON.parse of a 200 kB body that is one 100 000-deep array keeps the event loop
 * for 20–45 ms by itself, and every walk over the parsed value after it costs as much again; no
 * SCIM resource or PatchOp nests deeper than about six levels (Operations → op → value → members
 * → entry). One linear pass over the bytes, stopping at the first level too deep.
 */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/** The byte offset at which the JSON text nests deeper than `max` levels, or -1. Malformed JSON is left to the parser. */
export function jsonTooDeepAt(buf: Uint8Array, max = MAX_JSON_DEPTH): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return i;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return -1;
}

/** body-parser's `verify` hook: a body nesting deeper than MAX_JSON_DEPTH is a 400 before it is parsed. */
export function verifyJsonDepth(_req: unknown, _res: unknown, buf: Buffer): void {
  const at = jsonTooDeepAt(buf);
  if (at >= 0) {
    throw Object.assign(new Error(`the body nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects (at byte ${at})`), {
      status: 400, statusCode: 400, expose: true, type: 'json.too.deep',
    });
  }
}
