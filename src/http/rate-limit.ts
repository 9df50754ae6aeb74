import { TooManyRequests } from '../domain/errors.js';

/**
 * A token bucket per key (a SCIM token, a client address), in process memory: IdPs burst on
 * initial sync and then trickle. Each replica limits on its own; behind N replicas a key gets up
 * to N times the rate. `per` names the key in the error ("this token", "this address").
 *
 * `take` spends a token per request. `check` + `spend` count only some requests (the console
 * counts failed sign-ins): `check` refuses while the bucket is empty, `spend` counts one after
 * the fact.
 */
export function createRateLimiter(opts: { perSecond: number; burst: number; now?: () => number; per?: string }) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const now = opts.now ?? (() => performance.now());

  function bucket(key: string): { tokens: number; at: number } {
    const t = now();
    const b = buckets.get(key) ?? { tokens: opts.burst, at: t };
    b.tokens = Math.min(opts.burst, b.tokens + ((t - b.at) / 1000) * opts.perSecond);
    b.at = t;
    buckets.set(key, b);
    if (buckets.size > 10_000) for (const k of buckets.keys()) { buckets.delete(k); if (buckets.size <= 5_000) break; }
    return b;
  }

  function refuseIfEmpty(b: { tokens: number }): void {
    if (b.tokens < 1) {
      // RFC 9110 §10.2.3: Retry-After in whole seconds.
      throw new TooManyRequests(`rate limit of ${opts.perSecond} requests/s exceeded for ${opts.per ?? 'this token'}`, Math.max(1, Math.ceil((1 - b.tokens) / opts.perSecond)));
    }
  }

  return {
    take(key: string): void {
      const b = bucket(key);
      refuseIfEmpty(b);
      b.tokens -= 1;
    },
    check(key: string): void {
      refuseIfEmpty(bucket(key));
    },
    spend(key: string): void {
      const b = bucket(key);
      b.tokens = Math.max(0, b.tokens - 1);
    },
  };
}
