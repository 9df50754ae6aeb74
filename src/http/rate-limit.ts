import { TooManyRequests } from '../domain/errors.js';

/**
 * A token bucket per key (a SCIM token, a client address), in process memory: IdPs burst on
 * initial sync and then trickle. Each replica limits on its own; behind N replicas a key gets up
 * to N times the rate. `per` names the key in the error ("this token", "this address").
 */
export function createRateLimiter(opts: { perSecond: number; burst: number; now?: () => number; per?: string }) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const now = opts.now ?? (() => performance.now());
  return {
    take(key: string): void {
      const t = now();
      const b = buckets.get(key) ?? { tokens: opts.burst, at: t };
      b.tokens = Math.min(opts.burst, b.tokens + ((t - b.at) / 1000) * opts.perSecond);
      b.at = t;
      if (b.tokens < 1) {
        buckets.set(key, b);
        // RFC 9110 §10.2.3: Retry-After in whole seconds.
        throw new TooManyRequests(`rate limit of ${opts.perSecond} requests/s exceeded for ${opts.per ?? 'this token'}`, Math.max(1, Math.ceil((1 - b.tokens) / opts.perSecond)));
      }
      b.tokens -= 1;
      buckets.set(key, b);
      if (buckets.size > 10_000) for (const k of buckets.keys()) { buckets.delete(k); if (buckets.size <= 5_000) break; }
    },
  };
}
