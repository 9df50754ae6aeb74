/**
 * Rows sent to PostgreSQL as one JSON parameter (json_to_recordset / jsonb_to_recordset). Text and
 * jsonb cannot hold U+0000, which a client can put in a path or an attribute: it becomes U+FFFD
 * rather than failing the whole statement.
 */
export function jsonParam(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '\ufffd') : v));
}
