import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScheduler, type Job, type JobName } from '../../src/jobs/scheduler.js';
import { migrate } from '../../src/store/migrator.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { createTestDatabase, onPostgres, type TestDatabase } from '../support/database.js';

let tdb: TestDatabase;
let db: Database;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = tdb.db;
  await migrate(db);
});
afterAll(async () => tdb?.drop());

/** A pino logger whose JSON lines the test can read. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** A job that counts its runs and, while `gate` is set, waits for it before finishing. */
function controllable(name: JobName, schedule = '0 0 0 1 1 *') {
  const state = { runs: 0, gate: null as Promise<void> | null, fail: false };
  const job: Job = {
    name, schedule,
    async run() {
      state.runs++;
      if (state.gate) await state.gate;
      if (state.fail) throw new Error('boom');
      return { processed: 7 };
    },
  };
  return { job, state };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = (job: string, tickAt: Date) => db.prisma.jobTick.findUnique({ where: { job_tickAt: { job, tickAt } } });

describe('one tick, one run', () => {
  it('a tick is claimed once: a second replica asking for the same tick is told it is taken', async () => {
    const { job, state } = controllable('trial-ends');
    const a = createScheduler({ db, logger: pino({ level: 'silent' }), jobs: [job], instanceId: 'replica-a' });
    const b = createScheduler({ db, logger: pino({ level: 'silent' }), jobs: [job], instanceId: 'replica-b' });
    const tickAt = new Date('2030-01-01T00:00:00Z');
    const first = await a.runJobOnce('trial-ends', { tickAt });
    const second = await b.runJobOnce('trial-ends', { tickAt });
    expect(first).toMatchObject({ status: 'done', result: { processed: 7 } });
    expect(second).toMatchObject({ status: 'skipped', reason: 'tick-taken' });
    expect(state.runs).toBe(1);
    const row = await tick('trial-ends', tickAt);
    expect(row).toMatchObject({ startedBy: 'replica-a', result: { status: 'done', processed: 7 } });
    expect(row!.finishedAt).toBeInstanceOf(Date);
    expect(row!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('the same tick asked for by two replicas at once runs once', async () => {
    const { job, state } = controllable('bill-notices');
    const a = createScheduler({ db, logger: pino({ level: 'silent' }), jobs: [job] });
    const b = createScheduler({ db, logger: pino({ level: 'silent' }), jobs: [job] });
    const tickAt = new Date('2030-01-02T00:00:00Z');
    const outcomes = await Promise.all([a.runJobOnce('bill-notices', { tickAt }), b.runJobOnce('bill-notices', { tickAt })]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['done', 'skipped']);
    expect(state.runs).toBe(1);
  });

  it('noOverlap: while a job runs here, another tick of it is skipped', async () => {
    const { job, state } = controllable('retention-purge');
    const s = createScheduler({ db, logger: pino({ level: 'silent' }), jobs: [job] });
    const gate = deferred();
    state.gate = gate.promise;
    const running = s.runJobOnce('retention-purge');
    await waitFor(() => state.runs === 1);
    expect(s.running()).toEqual(['retention-purge']);
    expect(await s.runJobOnce('retention-purge')).toMatchObject({ status: 'skipped', reason: 'running-here' });
    gate.resolve();
    expect((await running).status).toBe('done');
    expect(state.runs).toBe(1);
  });

  it.runIf(onPostgres)('the advisory lock keeps another replica (its own connections) off a running job (PostgreSQL)', async () => {
    const other = await openDatabase({ kind: 'postgres', url: process.env.DATABASE_URL!, poolSize: 2, schema: tdb.schema! });
    try {
      const { job, state } = controllable('reconciliation');
      const a = createScheduler({ db, logger: pino({ level: 'silent' }), jobs: [job] });
      const b = createScheduler({ db: other, logger: pino({ level: 'silent' }), jobs: [job] });
      const gate = deferred();
      state.gate = gate.promise;
      const running = a.runJobOnce('reconciliation');
      await waitFor(() => state.runs === 1);
      expect(await b.runJobOnce('reconciliation')).toMatchObject({ status: 'skipped', reason: 'locked' });
      gate.resolve();
      expect((await running).status).toBe('done');
      // Released: the other replica gets it now.
      state.gate = null;
      expect((await b.runJobOnce('reconciliation')).status).toBe('done');
    } finally {
      await other.close();
    }
  });
});

describe('failures and logging', () => {
  it('a failing job is logged and recorded, and does not throw', async () => {
    const { job, state } = controllable('outbox-delivery');
    state.fail = true;
    const { logger, lines } = capturingLogger();
    const s = createScheduler({ db, logger, jobs: [job] });
    const tickAt = new Date('2030-01-03T00:00:00Z');
    const out = await s.runJobOnce('outbox-delivery', { tickAt });
    expect(out).toMatchObject({ status: 'failed', error: 'boom' });
    expect((await tick('outbox-delivery', tickAt))!.result).toEqual({ status: 'failed', error: 'boom' });
    const line = lines.find((l) => l.msg === 'job failed');
    expect(line).toMatchObject({ job: 'outbox-delivery', level: 50 });
    expect(line!.durationMs).toEqual(expect.any(Number));
  });

  it('a job is logged by name with its duration and counts', async () => {
    const { job } = controllable('trial-ends');
    const { logger, lines } = capturingLogger();
    const s = createScheduler({ db, logger, jobs: [job] });
    await s.runJobOnce('trial-ends');
    expect(lines.find((l) => l.msg === 'job done')).toMatchObject({ job: 'trial-ends', processed: 7, durationMs: expect.any(Number), trigger: 'manual' });
  });
});

describe('cron', () => {
  it('runs every tick of a per-second schedule once, keyed by its slot; stop() waits for the running tick', async () => {
    const { job, state } = controllable('trial-ends', '* * * * * *');
    const s = createScheduler({ db, logger: pino({ level: 'silent' }), jobs: [job] });
    const since = new Date();
    s.start();
    await waitFor(() => state.runs >= 2, 5000);
    const gate = deferred();
    state.gate = gate.promise;
    const runsBefore = state.runs;
    await waitFor(() => state.runs > runsBefore, 3000);
    let stopped = false;
    const stopping = s.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(stopped, 'stop() waits for the running tick').toBe(false);
    gate.resolve();
    await stopping;
    const runs = state.runs;
    await new Promise((r) => setTimeout(r, 1500));
    expect(state.runs, 'no tick after stop()').toBe(runs);

    const ticks = await db.prisma.jobTick.findMany({ where: { job: 'trial-ends', startedAt: { gte: since }, tickAt: { lt: new Date('2030-01-01') } }, orderBy: { tickAt: 'asc' } });
    expect(ticks.length).toBe(runs);
    for (const t of ticks) expect(t.tickAt.getUTCMilliseconds(), 'a slot is a whole second').toBe(0);
    expect(ticks.every((t) => t.finishedAt !== null)).toBe(true);
  });

  it('refuses an invalid cron expression', () => {
    expect(() => createScheduler({ db, logger: pino({ level: 'silent' }), jobs: [{ name: 'trial-ends', schedule: 'every minute', run: async () => ({}) }] }))
      .toThrow(/invalid cron expression/);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
