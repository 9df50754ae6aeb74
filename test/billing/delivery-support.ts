import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Database } from '../../src/store/database.js';

/**
 * Writes `n` outbox rows for an org in one statement (one transaction), the way a change
 * would: accounts take turns, and each account's deltas alternate added/removed in seq order,
 * continuing from where that account's previous deltas stopped.
 */
export async function insertDeltas(db: Database, orgId: string, accountIds: string[], n: number, cause = 'test'): Promise<void> {
  const accounts = JSON.stringify(accountIds);
  await db.prisma.$executeRaw`
    WITH acc AS (
      SELECT a.id::uuid AS id, a.ord - 1 AS idx,
             (SELECT count(*) FROM "BillableDelta" b WHERE b."accountId" = a.id::uuid) AS done
      FROM jsonb_array_elements_text(${accounts}::jsonb) WITH ORDINALITY AS a(id, ord)
    )
    INSERT INTO "BillableDelta" ("id", "orgId", "accountId", "kind", "reasons", "cause")
    SELECT gen_random_uuid(), ${orgId}::uuid, acc.id,
           (CASE WHEN (acc.done + (g.i - 1) / ${accountIds.length}::int) % 2 = 0 THEN 'added' ELSE 'removed' END)::"DeltaKind",
           ARRAY['test'], ${cause}
    FROM generate_series(1, ${n}::int) AS g(i)
    JOIN acc ON acc.idx = (g.i - 1) % ${accountIds.length}::int
    ORDER BY g.i`;
}

export const newIds = (n: number) => Array.from({ length: n }, () => randomUUID());

/** Every ledger entry with the outbox seq of its delta, in stream order. */
export async function ledgerInStreamOrder(db: Database) {
  return db.prisma.$queryRaw<{ deltaId: string; streamSeq: bigint; seq: bigint; orgId: string; accountId: string; kind: string }[]>`
    SELECT l."deltaId"::text AS "deltaId", l."streamSeq", b."seq", l."orgId"::text AS "orgId", l."accountId"::text AS "accountId", l."kind"::text AS "kind"
    FROM "LedgerEntry" l JOIN "BillableDelta" b ON b."id" = l."deltaId"
    ORDER BY l."streamSeq"`;
}

/** Asserts, per account, that the kinds in `rows` (already in stream order) alternate starting with added. */
export function alternationProblems(rows: { accountId: string; kind: string }[]): string[] {
  const last = new Map<string, string>();
  const problems: string[] = [];
  for (const r of rows) {
    const prev = last.get(r.accountId);
    const expected = prev === 'added' ? 'removed' : 'added';
    if (r.kind !== expected) problems.push(`${r.accountId}: ${r.kind} after ${prev ?? 'nothing'}`);
    last.set(r.accountId, r.kind);
  }
  return problems;
}

export type ReceivedRequest = { method: string; url: string; headers: IncomingHttpHeaders; rawBody: string; status: number };

/**
 * A real webhook receiver on 127.0.0.1: records every request (raw body included) and answers
 * 204, or `failStatus` for the next `failNext` requests, optionally after a delay.
 */
export async function startReceiver() {
  const requests: ReceivedRequest[] = [];
  const state = { failNext: 0, failStatus: 500, delayMs: 0, status: 204, redirectTo: null as string | null };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // Recorded on arrival: a request the sender gave up on (timeout) was still received.
      let status = state.status;
      if (state.failNext > 0) {
        state.failNext--;
        status = state.failStatus;
      }
      if (state.redirectTo) {
        status = 302;
        res.setHeader('Location', state.redirectTo);
      }
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawBody: Buffer.concat(chunks).toString('utf8'), status });
      const respond = () => {
        res.statusCode = status;
        res.end(status === 204 ? undefined : `status ${status}`);
      };
      if (state.delayMs > 0) setTimeout(respond, state.delayMs);
      else respond();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hooks/billing`,
    requests,
    state,
    /** The next n requests get `status` (default 500). */
    failNext(n: number, status = 500) {
      state.failNext = n;
      state.failStatus = status;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** A clock the test moves by hand. */
export function fakeClock(start = '2030-01-01T00:00:00.000Z') {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    advance(ms: number) {
      t += ms;
    },
  };
}
