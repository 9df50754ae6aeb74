import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import cron, { type ScheduledTask } from 'node-cron';
import type { JobName } from '../config.js';
import type { Logger } from '../log.js';
import type { Database, SqlSession } from '../store/database.js';

export type { JobName } from '../config.js';

/** What a job is handed for one tick. `now` is the time the tick started (jobs pass it to pure rules). */
export type JobContext = Readonly<{ db: Database; logger: Logger; now: Date; tickAt: Date; trigger: 'schedule' | 'manual' }>;

/** The counts a job reports; stored in JobTick.result and logged. */
export type JobResult = Record<string, unknown>;

export type Job = Readonly<{
  name: JobName;
  /** node-cron expression (six fields: seconds first). */
  schedule: string;
  run(ctx: JobContext): Promise<JobResult>;
}>;

export type JobOutcome =
  | { job: JobName; tickAt: Date; status: 'done'; durationMs: number; result: JobResult }
  | { job: JobName; tickAt: Date; status: 'failed'; durationMs: number; error: string }
  /**
   * running-here: this process is still running the job (noOverlap);
   * locked: another replica (or this one) holds the job's advisory lock;
   * tick-taken: another replica already claimed this tick.
   */
  | { job: JobName; tickAt: Date; status: 'skipped'; reason: 'running-here' | 'locked' | 'tick-taken' };

export type Scheduler = {
  /** Schedules every job with node-cron. Idempotent. */
  start(): void;
  /** Stops the schedules, then waits for the ticks that are running. */
  stop(): Promise<void>;
  /** Runs one job now, through the same claim and lock as a scheduled tick (tests, the CLI). */
  runJobOnce(name: JobName, opts?: { now?: Date; tickAt?: Date }): Promise<JobOutcome>;
  /** The jobs this process is running at the moment. */
  running(): JobName[];
  readonly jobs: readonly Job[];
};

/** First key of the two-int advisory lock space for jobs; the second is hashtext(schema:job). */
const JOB_LOCK_CLASS = 0x6f726a62; // "orjb"

/**
 * node-cron schedules guarded for many replicas on one database:
 *
 * 1. `noOverlap` (and an in-process set) — a tick never starts while the previous one of the
 *    same job still runs in this process;
 * 2. a PostgreSQL session advisory lock per job (per schema, so test schemas do not contend) —
 *    no two replicas run the same job at the same time, even for different ticks;
 * 3. a JobTick row (job, tickAt = the cron slot) inserted with ON CONFLICT DO NOTHING — only the
 *    replica whose insert won runs that tick, and the row records how it ended.
 *
 * Every tick is awaited, logged with a child logger carrying the job's name, its duration and its
 * counts; a failing job is logged and recorded, never thrown out of the timer.
 */
export function createScheduler(deps: { db: Database; logger: Logger; jobs: readonly Job[]; instanceId?: string }): Scheduler {
  const { db, jobs } = deps;
  const instanceId = deps.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const logger = deps.logger.child({ component: 'jobs', instance: instanceId });
  const byName = new Map(jobs.map((j) => [j.name, j]));
  // Shared by every scheduler on this Database object: on PGlite (one session for the whole
  // process) the advisory lock is re-entrant, so this is what keeps two schedulers apart there.
  const inFlight = inFlightFor(db);
  const mine = new Set<Promise<JobOutcome>>();
  let tasks: ScheduledTask[] = [];
  let stopped = false;

  for (const j of jobs) {
    if (!cron.validate(j.schedule)) throw new Error(`job ${j.name}: invalid cron expression "${j.schedule}"`);
  }

  async function tick(job: Job, tickAt: Date, trigger: JobContext['trigger'], now?: Date): Promise<JobOutcome> {
    const log = logger.child({ job: job.name });
    if (inFlight.has(job.name)) {
      log.debug({ tickAt }, 'job still running here; tick skipped');
      return { job: job.name, tickAt, status: 'skipped', reason: 'running-here' };
    }
    const p = runGuarded(job, tickAt, trigger, log, now);
    inFlight.set(job.name, p);
    mine.add(p);
    try {
      return await p;
    } finally {
      inFlight.delete(job.name);
      mine.delete(p);
    }
  }

  async function runGuarded(job: Job, tickAt: Date, trigger: JobContext['trigger'], log: Logger, now?: Date): Promise<JobOutcome> {
    try {
      return await db.withSession(async (s) => {
        if (!(await tryLock(s, job.name))) {
          log.debug({ tickAt }, 'job locked by another replica; tick skipped');
          return { job: job.name, tickAt, status: 'skipped', reason: 'locked' } as const;
        }
        try {
          const claimed = await s.query(
            `INSERT INTO "JobTick" ("job", "tickAt", "startedBy") VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING "job"`,
            [job.name, tickAt.toISOString(), `${instanceId}${trigger === 'manual' ? ':manual' : ''}`],
          );
          if (claimed.length === 0) {
            log.debug({ tickAt }, 'tick already claimed by another replica');
            return { job: job.name, tickAt, status: 'skipped', reason: 'tick-taken' } as const;
          }
          return await execute(s, job, tickAt, trigger, log, now ?? new Date());
        } finally {
          await unlock(s, job.name);
        }
      });
    } catch (err) {
      // The claim or the lock failed (database down): log, and let the next tick try again.
      log.error({ err, tickAt }, 'job tick could not start');
      return { job: job.name, tickAt, status: 'failed', durationMs: 0, error: errorText(err) };
    }
  }

  async function execute(s: SqlSession, job: Job, tickAt: Date, trigger: JobContext['trigger'], log: Logger, now: Date): Promise<JobOutcome> {
    const t0 = performance.now();
    let outcome: JobOutcome;
    try {
      const result = await job.run({ db, logger: log, now, tickAt, trigger });
      const durationMs = Math.round(performance.now() - t0);
      outcome = { job: job.name, tickAt, status: 'done', durationMs, result };
      log.info({ tickAt, trigger, durationMs, ...result }, 'job done');
    } catch (err) {
      const durationMs = Math.round(performance.now() - t0);
      outcome = { job: job.name, tickAt, status: 'failed', durationMs, error: errorText(err) };
      log.error({ err, tickAt, trigger, durationMs }, 'job failed');
    }
    const stored = outcome.status === 'done' ? { status: 'done', ...outcome.result } : { status: 'failed', error: outcome.error };
    try {
      await s.query(
        `UPDATE "JobTick" SET "finishedAt" = now(), "durationMs" = $3, "result" = $4::jsonb WHERE "job" = $1 AND "tickAt" = $2`,
        [job.name, tickAt.toISOString(), outcome.durationMs, JSON.stringify(stored, bigintSafe)],
      );
    } catch (err) {
      log.error({ err, tickAt }, 'job result could not be recorded');
    }
    return outcome;
  }

  return {
    jobs,
    start() {
      if (tasks.length || stopped) return;
      for (const job of jobs) {
        const task = cron.schedule(job.schedule, async (ctx) => {
          // The slot node-cron fired for (second precision) is the tick's identity on every replica.
          const slot = new Date(Math.floor(ctx.date.getTime() / 1000) * 1000);
          await tick(job, slot, 'schedule');
        }, {
          name: job.name, noOverlap: true, suppressMissedWarning: true, timezone: 'Etc/UTC',
          logger: {
            info: (m) => logger.debug({ job: job.name }, m),
            warn: (m) => logger.debug({ job: job.name }, m),
            error: (m, e) => logger.error({ job: job.name, err: e ?? m }, 'cron error'),
            debug: (m) => logger.trace({ job: job.name }, String(m)),
          },
        });
        tasks.push(task);
      }
      logger.info({ jobs: jobs.map((j) => ({ name: j.name, schedule: j.schedule })) }, 'jobs scheduled');
    },
    async stop() {
      stopped = true;
      const current = tasks;
      tasks = [];
      for (const t of current) await t.destroy();
      await Promise.allSettled([...mine]);
      if (current.length) logger.info('jobs stopped');
    },
    async runJobOnce(name, opts = {}) {
      const job = byName.get(name);
      if (!job) throw new Error(`unknown job "${name}"; jobs: ${[...byName.keys()].join(', ')}`);
      // A manual run is its own tick, at the millisecond it started (unless told which tick it is).
      return tick(job, opts.tickAt ?? new Date(), opts.tickAt ? 'schedule' : 'manual', opts.now ?? new Date());
    },
    running: () => [...inFlight.keys()],
  };
}

const inFlightByDb = new WeakMap<Database, Map<JobName, Promise<JobOutcome>>>();
function inFlightFor(db: Database): Map<JobName, Promise<JobOutcome>> {
  let m = inFlightByDb.get(db);
  if (!m) inFlightByDb.set(db, (m = new Map()));
  return m;
}

async function tryLock(s: SqlSession, job: string): Promise<boolean> {
  const rows = await s.query<{ locked: boolean }>(
    `SELECT pg_try_advisory_lock(${JOB_LOCK_CLASS}, hashtext(current_schema() || ':' || $1)) AS locked`, [job],
  );
  return rows[0]?.locked === true;
}

async function unlock(s: SqlSession, job: string): Promise<void> {
  await s.query(`SELECT pg_advisory_unlock(${JOB_LOCK_CLASS}, hashtext(current_schema() || ':' || $1))`, [job]);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
