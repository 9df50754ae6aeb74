import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Billing webhook signatures.
 *
 *   Orgsync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<delta id>.<t>.<raw body>")>
 *   Orgsync-Timestamp: <unix seconds>          (the same t)
 *   Idempotency-Key:   <delta id>              (the same on every attempt and replay)
 *
 * The HMAC key is the secret string exactly as shown to the admin (UTF-8, `whsec_` prefix
 * included). A receiver recomputes the HMAC over the raw request body (before any JSON parsing),
 * compares in constant time, and refuses a timestamp outside its tolerance (replays of an old,
 * captured request). Several v1 entries may appear; any match is enough.
 */
export const SIGNATURE_HEADER = 'Orgsync-Signature';
export const TIMESTAMP_HEADER = 'Orgsync-Timestamp';
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** A new webhook secret: `whsec_` + 32 random bytes, base64url. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export function signatureHex(secret: string, id: string, timestamp: number, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${id}.${timestamp}.`, 'utf8').update(rawBody).digest('hex');
}

/** The Orgsync-Signature header value for a body signed at `timestamp` (unix seconds). */
export function signatureHeader(secret: string, id: string, timestamp: number, rawBody: string | Buffer): string {
  return `t=${timestamp},v1=${signatureHex(secret, id, timestamp, rawBody)}`;
}

export type SignatureCheck =
  | { ok: true; id: string; timestamp: number }
  | { ok: false; reason: 'malformed-header' | 'malformed-body' | 'stale-timestamp' | 'signature-mismatch' };

/**
 * Checks an Orgsync-Signature header against the raw body. The delta id is the body's `id`
 * (or `opts.id`, e.g. the Idempotency-Key header). `toleranceSeconds` bounds |now − t|.
 */
export function verifySignature(
  secret: string, header: string | null | undefined, rawBody: string | Buffer, toleranceSeconds: number,
  opts: { now?: Date; id?: string } = {},
): SignatureCheck {
  if (typeof header !== 'string' || header.length > 4096) return { ok: false, reason: 'malformed-header' };
  let timestamp: number | null = null;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return { ok: false, reason: 'malformed-header' };
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (!/^\d{1,12}$/.test(value) || timestamp !== null) return { ok: false, reason: 'malformed-header' };
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (!/^[0-9a-f]{64}$/.test(value)) return { ok: false, reason: 'malformed-header' };
      candidates.push(value);
    }
    // Other schemes (a future v2) are ignored, so receivers keep working while both are sent.
  }
  if (timestamp === null || candidates.length === 0) return { ok: false, reason: 'malformed-header' };

  let id = opts.id;
  if (id === undefined) {
    try {
      const parsed: unknown = JSON.parse(Buffer.isBuffer(rawBody) ? rawBody.toString('utf8') : rawBody);
      const bodyId = parsed && typeof parsed === 'object' ? (parsed as { id?: unknown }).id : undefined;
      if (typeof bodyId !== 'string') return { ok: false, reason: 'malformed-body' };
      id = bodyId;
    } catch {
      return { ok: false, reason: 'malformed-body' };
    }
  }

  const expected = Buffer.from(signatureHex(secret, id, timestamp, rawBody), 'hex');
  const match = candidates.some((c) => timingSafeEqual(Buffer.from(c, 'hex'), expected));
  if (!match) return { ok: false, reason: 'signature-mismatch' };
  const nowSeconds = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return { ok: false, reason: 'stale-timestamp' };
  return { ok: true, id, timestamp };
}
