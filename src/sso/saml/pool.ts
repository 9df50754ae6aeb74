/**
 * SAML verification off the event loop: a small pool of worker threads, each running the pure,
 * CPU-bound `verifySamlResponse` (./verify.ts: decode → schema → signature → checks) on its own
 * XSD validator, so that one core's HTTP, database and session work is not queued behind XML
 * parsing and canonicalization.
 *
 * - Size: `os.availableParallelism()` threads (at least 1). `start()` spawns them and waits until
 *   each has compiled the schemas and passed the validator's self-test (a worker that cannot fails
 *   the start). A worker costs ~0.3 s of CPU to start and ~30 MB; the service starts the pool
 *   without waiting for it (startSamlVerifierPool).
 * - Queue: FIFO, bounded (`maxQueue`); a request beyond it is refused at once with
 *   `TooManyRequests` (429) rather than waiting.
 * - Budget: `verifyTimeoutMs` runs from the moment a request is queued (waiting for a worker
 *   counts). The worker checks it between steps and refuses with `timeout` itself; a request
 *   still unanswered `GRACE_MS` after its deadline is refused with `timeout` by the pool, and a
 *   worker still busy with it is terminated and replaced (a step that never returns costs one
 *   thread start, not the service).
 * - Errors: an `SsoRefused` crosses the thread boundary as data (reason, message, checks, status)
 *   and is rebuilt here, so the ACS refuses exactly as in-thread; any other failure (a crashed
 *   worker, an unexpected exception) rejects with a plain Error (the ACS answers 500, logged).
 *   A worker that exits unexpectedly is replaced at once; a replacement that cannot start is
 *   retried every second (logged).
 *
 * `verifySamlResponse` below has the contract of ./verify.ts's: the ACS imports it from here and
 * gets the process's pool once server.ts has started it and a worker is warm, or an in-thread
 * verification otherwise (while the pool warms, if it could not start, while no worker is up,
 * in scripts and tests that build the app without the server).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SsoRefused, TooManyRequests, type SsoCheck } from '../../domain/errors.js';
import type { VerifiedAnswer } from '../../domain/sso.js';
import type { SamlConnection } from './service-provider.js';
import { preciseNow, verifySamlResponse as verifyInThread, type SamlVerifyOptions } from './verify.js';

/** Main thread → worker. */
export type WorkerRequest = { id: number; conn: SamlConnection; samlResponse: string; opts: SamlVerifyOptions };
/** Worker → main thread. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'answer'; id: number; answer: VerifiedAnswer }
  | { type: 'refused'; id: number; reason: string; message: string; checks: SsoCheck[]; status: SsoRefused['status'] }
  | { type: 'error'; id: number; message: string; stack: string | null };

type PoolLogger = { info?(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

export type SamlVerifierPoolOptions = {
  /** Worker threads (default `os.availableParallelism()`, at least 1). */
  size?: number;
  /** Requests waiting for a worker beyond which new ones are refused (default 64 per worker). */
  maxQueue?: number;
  /** How long start() waits for the workers to warm (default 60 s). */
  startTimeoutMs?: number;
  logger?: PoolLogger;
  /** The worker entry (tests). */
  workerUrl?: URL;
};

/** How long after a request's deadline the pool stops waiting for the worker's own answer. */
export const GRACE_MS = 100;
/** Pause before replacing a worker that died before it was ready. */
const RESPAWN_PAUSE_MS = 1000;
const WORKER_URL = new URL('./verify-worker.mjs', import.meta.url);

type Job = {
  id: number;
  request: WorkerRequest;
  deadline: number;
  budgetMs: number;
  resolve(answer: VerifiedAnswer): void;
  reject(err: Error): void;
  /** Fires GRACE_MS after the deadline while the job is still queued or running. */
  timer: NodeJS.Timeout | null;
  slot: Slot | null;
};

type Slot = { worker: Worker; ready: boolean; job: Job | null; retired: boolean };

function timeoutRefusal(budgetMs: number): SsoRefused {
  const message = `verification took longer than ${budgetMs} ms`;
  return new SsoRefused('timeout', message, [{ name: 'time-budget', passed: false, detail: message }], 400);
}

export class SamlVerifierPool {
  readonly size: number;
  readonly maxQueue: number;
  private readonly startTimeoutMs: number;
  private readonly logger: PoolLogger | null;
  private readonly workerUrl: URL;
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private started: Promise<void> | null = null;
  private readonly respawns = new Set<NodeJS.Timeout>();

  constructor(opts: SamlVerifierPoolOptions = {}) {
    this.size = Math.max(1, Math.floor(opts.size ?? availableParallelism()));
    this.maxQueue = Math.max(0, Math.floor(opts.maxQueue ?? 64 * this.size));
    this.startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    this.logger = opts.logger ?? null;
    this.workerUrl = opts.workerUrl ?? WORKER_URL;
  }

  /** Spawns the workers and resolves once every one is warm; rejects (and closes) if one is not. */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the SAML verifier pool is closed'));
    this.started ??= (async () => {
      try {
        await Promise.all(Array.from({ length: this.size }, () => this.spawn()));
      } catch (err) {
        await this.close();
        throw err;
      }
    })();
    return this.started;
  }

  /** Workers ready or busy (for tests and diagnostics). */
  get threads(): number {
    let n = 0;
    for (const s of this.slots) if (s.ready && !s.retired) n++;
    return n;
  }

  /** Requests waiting for a worker. */
  get waiting(): number {
    return this.queue.length;
  }

  verify(conn: SamlConnection, samlResponse: string, opts: SamlVerifyOptions): Promise<VerifiedAnswer> {
    if (this.closed) return Promise.reject(new Error('the SAML verifier pool is closed'));
    if (this.queue.length >= this.maxQueue && !this.idleSlot()) {
      return Promise.reject(new TooManyRequests(`SAML verification is busy (${this.queue.length} answers waiting); retry in a moment`, 1));
    }
    const budgetStartedAt = opts.budgetStartedAt ?? preciseNow();
    const id = this.nextId++;
    return new Promise<VerifiedAnswer>((resolve, reject) => {
      const job: Job = {
        id,
        request: { id, conn, samlResponse, opts: { ...opts, budgetStartedAt } },
        deadline: budgetStartedAt + opts.verifyTimeoutMs,
        budgetMs: opts.verifyTimeoutMs,
        resolve, reject, timer: null, slot: null,
      };
      job.timer = setTimeout(() => this.expire(job), Math.max(0, job.deadline - preciseNow()) + GRACE_MS);
      this.queue.push(job);
      this.pump();
    });
  }

  /** Refuses what is queued, terminates the workers. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.respawns) clearTimeout(t);
    this.respawns.clear();
    for (const job of this.queue.splice(0)) this.settle(job, new Error('the SAML verifier pool is closed'));
    const slots = [...this.slots];
    for (const slot of slots) {
      slot.retired = true;
      if (slot.job) this.settle(slot.job, new Error('the SAML verifier pool is closed'));
    }
    this.slots.clear();
    await Promise.all(slots.map((s) => s.worker.terminate().catch(() => 0)));
  }

  // -------------------------------------------------------------------------------------------

  /** Starts one worker; resolves when it is warm. */
  private spawn(): Promise<void> {
    const worker = new Worker(this.workerUrl, {
      // Not the parent's flags (a `--import tsx` there does not carry over to a worker anyway;
      // the entry registers tsx itself).
      execArgv: [],
      name: 'saml-verify',
      resourceLimits: { maxOldGenerationSizeMb: 256 },
    });
    const slot: Slot = { worker, ready: false, job: null, retired: false };
    this.slots.add(slot);
    return new Promise<void>((resolve, reject) => {
      let warmed = false;
      const startTimer = setTimeout(() => {
        if (warmed) return;
        warmed = true;
        this.retire(slot);
        reject(new Error(`a SAML verification worker did not warm within ${this.startTimeoutMs} ms`));
      }, this.startTimeoutMs);
      startTimer.unref();
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          if (warmed) return;
          warmed = true;
          clearTimeout(startTimer);
          slot.ready = true;
          // An idle worker does not keep the process alive; a busy one does (pump/onReply).
          worker.unref();
          resolve();
          this.pump();
        } else if (m.type === 'failed') {
          if (warmed) return;
          warmed = true;
          clearTimeout(startTimer);
          this.retire(slot);
          reject(new Error(`a SAML verification worker could not start: ${m.message}`));
        } else {
          this.onReply(slot, m);
        }
      });
      worker.on('error', (err) => {
        // An uncaught exception ends the thread ('exit' follows).
        if (!warmed) {
          warmed = true;
          clearTimeout(startTimer);
          reject(new Error(`a SAML verification worker could not start: ${err.message}`, { cause: err }));
        } else if (!slot.retired) {
          this.logger?.error({ err }, 'SAML verification worker failed');
        }
        if (slot.job) this.settle(slot.job, new Error(`the SAML verification worker failed: ${err.message}`, { cause: err }));
      });
      worker.on('exit', (code) => {
        const wasReady = slot.ready;
        this.slots.delete(slot);
        if (slot.job) this.settle(slot.job, new Error(`the SAML verification worker exited (code ${code})`));
        if (!warmed) {
          warmed = true;
          clearTimeout(startTimer);
          reject(new Error(`a SAML verification worker exited during start (code ${code})`));
        }
        // One that never became ready is retried by whoever awaited it (start() fails; replace() retries).
        if (slot.retired || this.closed || !wasReady) return;
        this.logger?.warn({ code }, 'SAML verification worker exited; starting another');
        this.replace(0);
      });
    });
  }

  /** A replacement worker, now or after `delayMs`; its failure to start is logged and retried after a pause. */
  private replace(delayMs: number): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.respawns.delete(t);
      if (this.closed) return;
      this.spawn().catch((err: Error) => {
        if (this.closed) return;
        this.logger?.error({ err }, 'SAML verification worker could not start; retrying');
        this.replace(RESPAWN_PAUSE_MS);
      });
    }, delayMs);
    this.respawns.add(t);
  }

  /** Takes a worker out of service and terminates it (its 'exit' then does not respawn). */
  private retire(slot: Slot): void {
    slot.retired = true;
    slot.ready = false;
    this.slots.delete(slot);
    void slot.worker.terminate().catch(() => 0);
  }

  private idleSlot(): Slot | null {
    for (const s of this.slots) if (s.ready && !s.retired && !s.job) return s;
    return null;
  }

  private pump(): void {
    let slot: Slot | null;
    while (this.queue.length > 0 && (slot = this.idleSlot())) {
      const job = this.queue.shift()!;
      if (preciseNow() >= job.deadline) {
        this.settle(job, timeoutRefusal(job.budgetMs));
        continue;
      }
      job.slot = slot;
      slot.job = job;
      slot.worker.ref();
      try {
        slot.worker.postMessage(job.request);
      } catch (err) {
        // Not cloneable (never for a SamlConnection and strings): this request fails, the worker stays.
        slot.job = null;
        slot.worker.unref();
        this.settle(job, err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private onReply(slot: Slot, m: Exclude<WorkerMessage, { type: 'ready' | 'failed' }>): void {
    const job = slot.job;
    if (!job || job.id !== m.id) return; // an answer to a request the pool already gave up on
    slot.job = null;
    slot.worker.unref();
    if (m.type === 'answer') this.settle(job, null, m.answer);
    else if (m.type === 'refused') this.settle(job, new SsoRefused(m.reason, m.message, m.checks, m.status));
    else this.settle(job, Object.assign(new Error(`SAML verification failed: ${m.message}`), m.stack ? { workerStack: m.stack } : {}));
    this.pump();
  }

  /** GRACE_MS past the deadline: refuse; a worker still on it is replaced. */
  private expire(job: Job): void {
    job.timer = null;
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    const slot = job.slot;
    this.settle(job, timeoutRefusal(job.budgetMs));
    if (slot && slot.job === job) {
      slot.job = null;
      this.logger?.warn({ budgetMs: job.budgetMs }, 'SAML verification overran its budget; replacing the worker');
      this.retire(slot);
      this.replace(0);
    }
  }

  private settle(job: Job, err: Error | null, answer?: VerifiedAnswer): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    const resolve = job.resolve;
    const reject = job.reject;
    // Settle once.
    job.resolve = () => {};
    job.reject = () => {};
    if (err) reject(err);
    else resolve(answer!);
  }
}

// ---------------------------------------------------------------------------------------------
// The process's pool (server.ts starts and stops it).

/** The process's pool once its workers are warm; until then the ACS verifies in-thread. */
let shared: SamlVerifierPool | null = null;
let current: { pool: SamlVerifierPool; ready: Promise<SamlVerifierPool | null> } | null = null;
/** Services in this process that started the pool and have not stopped it (tests run several). */
let users = 0;

/**
 * Starts the process's pool, or joins the one already started. It warms in the background —
 * start-up does not wait for it, and the ACS verifies in-thread (on the main thread's own warm
 * validator) until it is ready. Resolves with the pool once warm, or null when its workers could
 * not start (logged; verification then stays in-thread, as without a pool).
 */
export function startSamlVerifierPool(opts: SamlVerifierPoolOptions = {}): Promise<SamlVerifierPool | null> {
  users++;
  return startPool(opts);
}

function startPool(opts: SamlVerifierPoolOptions): Promise<SamlVerifierPool | null> {
  if (!current) {
    const pool = new SamlVerifierPool(opts);
    const t0 = performance.now();
    const ready = pool.start().then(
      () => {
        if (current?.pool !== pool) return null; // stopped meanwhile
        shared = pool;
        opts.logger?.info?.({ threads: pool.size, ms: Math.round(performance.now() - t0) }, 'SAML verification threads ready');
        return pool;
      },
      (err: unknown) => {
        if (current?.pool !== pool) return null;
        current = null;
        opts.logger?.error({ err }, 'SAML verification workers could not start; verifying on the main thread');
        return null;
      },
    );
    current = { pool, ready };
  }
  return current.ready;
}

/** Options of a pool that starts at the first SAML response (see enableSamlVerifierPool). */
let lazy: SamlVerifierPoolOptions | null = null;

/**
 * Lets the process use a pool, started at the first SAML response rather than at start-up: a
 * deployment (or a test) that never receives one pays nothing for it (each thread costs ~0.3 s of
 * CPU to start and ~30 MB). `size: 0` keeps verification on the main thread. Paired with
 * stopSamlVerifierPool().
 */
export function enableSamlVerifierPool(opts: SamlVerifierPoolOptions): void {
  users++;
  lazy ??= opts;
}

/** Leaves the process's pool; the last service to leave closes it (verification then runs in-thread). */
export async function stopSamlVerifierPool(): Promise<void> {
  if (users === 0) return;
  users--;
  if (users > 0) return;
  const c = current;
  current = null;
  shared = null;
  lazy = null;
  await c?.pool.close();
}

/**
 * ./verify.ts's `verifySamlResponse`, on the process's pool when it has a warm worker, else in
 * this thread (before the pool is warm, when it could not start, in the moment none of its
 * workers is up). Same answers, same refusals.
 */
export function verifySamlResponse(conn: SamlConnection, samlResponseBase64: string, opts: SamlVerifyOptions): Promise<VerifiedAnswer> {
  if (!current && lazy && lazy.size !== 0) void startPool(lazy);
  return shared && shared.threads > 0 ? shared.verify(conn, samlResponseBase64, opts) : verifyInThread(conn, samlResponseBase64, opts);
}
