import type { Database } from '../store/database.js';
import { webhookStore, type ClaimedDelivery, type DeliveryOutcome } from './ledger-store.js';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signatureHeader } from './webhook-signature.js';
import { openWebhookSecret } from './webhook-secret.js';
import type { SecretBox } from '../services/secret-box.js';

export const DEFAULT_SEND_BATCH = 50;
/** Requests of one batch in flight at once. */
const CONCURRENCY = 10;
/** A claimed delivery is left alone this long beyond the request timeout before another sender may retry it. */
const LEASE_MARGIN_MS = 30_000;
/** The back-off never waits longer than this between two attempts. */
const MAX_DELAY_MS = 6 * 3600_000;

export type SendOptions = {
  maxAttempts: number; baseDelayMs: number; timeoutMs: number;
  /** Opens the stored signing secrets (src/billing/webhook-secret.ts). */
  box: SecretBox;
  now?: () => Date; fetchImpl?: typeof fetch; batchSize?: number;
  /** [0, 1), for the jitter; Math.random by default. */
  random?: () => number;
};

/** The JSON body of a delivery: the delta, with the id it has everywhere (stream, ledger, replays). */
export function deliveryBody(d: Pick<ClaimedDelivery, 'deltaId' | 'orgId' | 'accountId' | 'kind' | 'reasons' | 'cause' | 'occurredAt'>): string {
  return JSON.stringify({
    id: d.deltaId, orgId: d.orgId, accountId: d.accountId, kind: d.kind, reasons: d.reasons, cause: d.cause, occurredAt: d.occurredAt.toISOString(),
  });
}

/**
 * Exponential back-off with full jitter: after the n-th failed attempt the next one waits a
 * random time in [0, baseDelayMs × 2^(n−1)] (capped at 6 h), so the first retry waits at most
 * baseDelayMs and receivers recovering from an outage are not hit by every sender at once.
 */
export function retryDelayMs(attemptsMade: number, baseDelayMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(baseDelayMs * 2 ** Math.max(0, attemptsMade - 1), MAX_DELAY_MS);
  return Math.floor(random() * (ceiling + 1));
}

/**
 * Sends one batch of due webhook deliveries and records the outcomes.
 *
 * Claiming (FOR UPDATE SKIP LOCKED) counts the attempt and pushes nextAttemptAt past the
 * request timeout in the same autocommitted statement, so no row lock is held during the HTTP
 * calls and a concurrent sender (another replica) skips these rows. Then each delta is POSTed,
 * signed (see webhook-signature.ts), with `Idempotency-Key: <delta id>`; redirects are not
 * followed. A 2xx marks it sent; anything else (status, timeout, network error) schedules a
 * retry with back-off, or marks it dead once maxAttempts attempts failed. A sender that dies
 * after claiming leaves the rows to be retried when the lease ends (that attempt counted).
 *
 * At-least-once: a receiver may see a delta twice (a lost response, a replay); the delta id
 * in the body and in Idempotency-Key is stable, so it can apply it exactly once.
 */
export async function sendDueWebhooks(
  db: Database,
  opts: SendOptions,
): Promise<{ sent: number; failed: number; dead: number }> {
  const clock = opts.now ?? (() => new Date());
  const doFetch = opts.fetchImpl ?? fetch;
  const random = opts.random ?? Math.random;
  const start = clock();
  const claimed = await webhookStore.claimDue(
    db.prisma, opts.batchSize ?? DEFAULT_SEND_BATCH, start, new Date(start.getTime() + opts.timeoutMs + LEASE_MARGIN_MS),
  );
  if (!claimed.length) return { sent: 0, failed: 0, dead: 0 };

  const results: { d: ClaimedDelivery; ok: boolean; httpStatus: number | null; error: string | null }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < claimed.length) {
      const d = claimed[next++]!;
      results.push({ d, ...(await attempt(d, opts.box, doFetch, clock, opts.timeoutMs)) });
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, claimed.length) }, worker));

  const done = clock();
  const counts = { sent: 0, failed: 0, dead: 0 };
  const outcomes: DeliveryOutcome[] = results.map(({ d, ok, httpStatus, error }) => {
    if (ok) {
      counts.sent++;
      return { deltaId: d.deltaId, attempts: d.attempts, status: 'sent', nextAttemptAt: done, httpStatus, error: null };
    }
    if (d.attempts >= opts.maxAttempts) {
      counts.dead++;
      return { deltaId: d.deltaId, attempts: d.attempts, status: 'dead', nextAttemptAt: done, httpStatus, error };
    }
    counts.failed++;
    const wait = retryDelayMs(d.attempts, opts.baseDelayMs, random);
    return { deltaId: d.deltaId, attempts: d.attempts, status: 'pending', nextAttemptAt: new Date(done.getTime() + wait), httpStatus, error };
  });
  await webhookStore.recordOutcomes(db.prisma, outcomes, done);
  return counts;
}

async function attempt(
  d: ClaimedDelivery, box: SecretBox, doFetch: typeof fetch, clock: () => Date, timeoutMs: number,
): Promise<{ ok: boolean; httpStatus: number | null; error: string | null }> {
  let secret: string;
  try {
    secret = openWebhookSecret(box, d.secretEnc);
  } catch {
    // Never sent unsigned: the attempt fails (and is retried, then dead) until an admin rotates the secret.
    return { ok: false, httpStatus: null, error: 'the signing secret cannot be decrypted with this service\'s SECRET_KEY (it was sealed under another key); rotate it: POST …/billing/webhook/secret' };
  }
  const body = deliveryBody(d);
  const timestamp = Math.floor(clock().getTime() / 1000);
  try {
    const res = await doFetch(d.url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        [SIGNATURE_HEADER]: signatureHeader(secret, d.deltaId, timestamp, body),
        [TIMESTAMP_HEADER]: String(timestamp),
        [IDEMPOTENCY_HEADER]: d.deltaId,
        'User-Agent': 'orgsync-billing-webhook/1',
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The body is not needed; release the connection.
    await res.body?.cancel().catch(() => {});
    const ok = res.status >= 200 && res.status < 300;
    return { ok, httpStatus: res.status, error: ok ? null : `HTTP ${res.status}` };
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    const error = name === 'TimeoutError' || name === 'AbortError'
      ? `timed out after ${timeoutMs} ms`
      : `${name || 'Error'}: ${err instanceof Error ? describe(err) : String(err)}`;
    return { ok: false, httpStatus: null, error: error.slice(0, 500) };
  }
}

/** fetch wraps network errors ("fetch failed"); the cause says what happened (ECONNREFUSED, …). */
function describe(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  const causeText = cause instanceof Error ? ` (${(cause as { code?: string }).code ?? cause.message})` : '';
  return `${err.message}${causeText}`;
}
