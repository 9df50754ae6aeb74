import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import pg from 'pg';

const BIN = new URL('../../bin/orgsync.js', import.meta.url).pathname;

export type ChildService = {
  child: ChildProcess;
  url: string;
  /** Every JSON log line so far. */
  logs: () => Record<string, unknown>[];
  kill(signal?: NodeJS.Signals): Promise<void>;
};

/** `orgsync serve` as a real process on a free port; resolves once it logs "orgsync serving". */
export async function spawnService(env: Record<string, string>): Promise<ChildService> {
  let out = '';
  const lines: Record<string, unknown>[] = [];
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p));
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr!.on('data', (d) => (out += d));
  const exited = once(child, 'exit');
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const serving = lines.find((l) => l.msg === 'orgsync serving');
    if (serving) {
      return {
        child, url: `http://127.0.0.1:${serving.port}`, logs: () => lines,
        async kill(signal = 'SIGKILL') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
      };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`service did not start:\n${out}`);
}

/** A fresh database on the PostgreSQL server of DATABASE_URL, dropped by drop(). */
export async function freshDatabase(baseUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `orgsync_t_${randomBytes(5).toString('hex')}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: baseUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

export async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
