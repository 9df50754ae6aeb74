import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, lstatSync, readFileSync, readdirSync, realpathSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * A PGlite data directory belongs to one process at a time: two PGlite instances on one
 * directory both accept writes, and one's acknowledged writes are lost. The holder keeps
 * DATA_DIR/orgsync.lock (JSON: pid, hostname, start time), created atomically (a complete
 * temporary file hard-linked into place, which fails if the lock exists).
 *
 * Written by hand rather than with proper-lockfile, whose staleness is an mtime older than a
 * timeout: a crashed holder would block its replacement for that long, and the refusal could
 * not name the holder's pid. Here a lock is stale when:
 * - it was written on this host and its pid is not alive (`kill(pid, 0)` answers ESRCH), or the
 *   pid is this process's own without this process holding it (a container restarted with
 *   the same pid);
 * - it was written on another host (another container on a shared volume: its pid means
 *   nothing here) and the holder has not refreshed the file's mtime for STALE_MS; a holder
 *   touches it every HEARTBEAT_MS.
 * A stale lock is taken over (the caller logs it); taking over is serialised by a second,
 * short-lived file (orgsync.lock.takeover) so that two processes finding the same stale lock
 * cannot both win.
 */
export const LOCK_FILE = 'orgsync.lock';
const HEARTBEAT_MS = 10_000;
export const STALE_MS = 60_000;

export type LockHolder = { pid: number; hostname: string; startedAt: string; token: string };

/** Refusal to open a data directory another live process holds; the CLI exits 2 with its message. */
export class DataDirLocked extends Error {
  constructor(readonly dataDir: string, readonly holder: LockHolder, readonly lockFile: string, readonly otherHost: boolean) {
    const who = holder.pid === process.pid && !otherHost ? `this process (pid ${holder.pid})` : `pid ${holder.pid} on ${holder.hostname}`;
    super(
      `DATA_DIR ${dataDir} is in use by another orgsync process: ${who}, started ${holder.startedAt}. ` +
      'A PGlite data directory belongs to one process at a time; stop that process first, or use PostgreSQL (DATABASE_URL) to run several. ' +
      (otherHost
        ? `The lock (${lockFile}) was written on another host; if that process is gone, it is taken over once it is ${STALE_MS / 1000} s old.`
        : `(lock file ${lockFile})`),
    );
    this.name = 'DataDirLocked';
  }
}

export type DataDirLock = {
  file: string;
  /** Set when a stale lock was taken over: the holder it replaced. */
  tookOver: LockHolder | null;
  /** Removes the lock file if it is still this holder's. Synchronous, idempotent. */
  release(): void;
};

/** Locks held by this process, by the data directory's real path. */
const held = new Map<string, DataDirLock>();
let exitHookInstalled = false;

/** Takes DATA_DIR's lock, taking over a stale one, or throws DataDirLocked. The directory must exist. */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const key = realpathSync(dataDir);
  const file = join(dataDir, LOCK_FILE);
  const guard = `${file}.takeover`;
  const mine: LockHolder = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString(), token: randomBytes(12).toString('hex') };
  if (held.has(key)) {
    const h = readHolder(file);
    throw new DataDirLocked(dataDir, h && h !== 'gone' ? h : mine, file, false);
  }
  // The complete lock, written beside it, then linked into place: a reader never sees it half written.
  const tmp = `${file}.${process.pid}.${mine.token}`;
  writeFileSync(tmp, `${JSON.stringify(mine)}\n`, { mode: 0o600, flag: 'wx' });
  let tookOver: LockHolder | null = null;
  try {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 100) throw new Error(`could not take the lock ${file}: it keeps changing`);
      if (tryLink(tmp, file)) break;
      const holder = readHolder(file);
      if (holder === 'gone') continue;
      if (holder && isAlive(holder, file)) throw new DataDirLocked(dataDir, holder, file, holder.hostname !== mine.hostname);
      // Stale (or unreadable: not a lock this code wrote). Take it over, one taker at a time.
      if (!tryCreate(guard)) {
        if (ageMs(guard) > 10_000) tryUnlink(guard); // a taker that died mid-takeover
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      try {
        const again = readHolder(file);
        if (again !== 'gone' && !sameHolder(again, holder)) continue; // changed meanwhile: judge it again
        if (again !== 'gone') tryUnlink(file);
        if (!tryLink(tmp, file)) continue;
        tookOver = holder ?? { pid: 0, hostname: 'unknown', startedAt: 'unknown', token: '' };
        break;
      } finally {
        tryUnlink(guard);
      }
    }
  } finally {
    tryUnlink(tmp);
  }

  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(file, now, now);
    } catch {
      /* the next beat tries again */
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const lock: DataDirLock = {
    file,
    tookOver,
    release() {
      if (held.get(key) !== lock) return;
      held.delete(key);
      clearInterval(heartbeat);
      const holder = readHolder(file);
      if (holder && holder !== 'gone' && holder.token === mine.token) tryUnlink(file);
    },
  };
  held.set(key, lock);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // process.exit() without a close (a failed start, a signal handler): the lock goes with the process.
    process.on('exit', () => {
      for (const l of [...held.values()]) l.release();
    });
  }
  return lock;
}

function isAlive(holder: LockHolder, file: string): boolean {
  if (holder.hostname !== hostname()) return ageMs(file) < STALE_MS;
  // Our own pid, and we do not hold it (checked before): left by an earlier process that had this pid.
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, another user's
  }
}

function readHolder(file: string): LockHolder | null | 'gone' {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (Number.isInteger(v.pid) && (v.pid as number) > 0 && typeof v.hostname === 'string' && typeof v.startedAt === 'string') {
      return { pid: v.pid as number, hostname: v.hostname, startedAt: v.startedAt, token: typeof v.token === 'string' ? v.token : '' };
    }
  } catch {
    /* not ours */
  }
  return null;
}

function sameHolder(a: LockHolder | null, b: LockHolder | null): boolean {
  return a === b || (a !== null && b !== null && a.pid === b.pid && a.hostname === b.hostname && a.startedAt === b.startedAt && a.token === b.token);
}

function tryLink(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function tryCreate(file: string): boolean {
  try {
    writeFileSync(file, `${process.pid}\n`, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function tryUnlink(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return Infinity;
  }
}

/**
 * Takes group and other permissions off DATA_DIR and everything under it (PGlite creates its
 * files 0666 and directories 0777 before the umask applies). Symbolic links are left alone.
 * Returns how many entries it changed and the paths it could not change.
 */
export function restrictToOwner(dir: string): { changed: number; failed: string[] } {
  let changed = 0;
  const failed: string[] = [];
  const visit = (path: string) => {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return; // removed meanwhile
    }
    if (st.isSymbolicLink()) return;
    if ((st.mode & 0o077) !== 0) {
      try {
        chmodSync(path, st.mode & 0o7700);
        changed++;
      } catch {
        failed.push(path);
      }
    }
    if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = readdirSync(path);
      } catch {
        failed.push(path);
      }
      for (const name of names) visit(join(path, name));
    }
  };
  visit(dir);
  return { changed, failed };
}
