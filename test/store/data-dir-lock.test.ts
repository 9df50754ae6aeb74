/**
 * Issue 11 §6: a PGlite data directory is not shared by accident. Two processes on one DATA_DIR
 * both accepted writes and one's acknowledged writes were lost; PGlite's files were mode 0666.
 * Real processes (`orgsync serve`, `migrate`, `reconcile`) on a temporary DATA_DIR; PGlite on
 * disk whichever database the suite runs on (DATABASE_URL is cleared for the children).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = new URL('../../bin/orgsync.js', import.meta.url).pathname;
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'orgsync-datadir-'));
  dirs.push(d);
  return join(d, 'data');
}

const env = (dataDir: string) => ({ ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, DATABASE_URL: '', LOG_LEVEL: 'info', JOBS_ENABLED: 'false' });

async function serve(dataDir: string): Promise<{ child: ChildProcess; logs: () => string }> {
  let out = '';
  const child = spawn(process.execPath, [BIN, 'serve'], { env: env(dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (/"msg":"orgsync serving"/.test(out)) return { child, logs: () => out };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`service did not start:\n${out}`);
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

function modesOpenToOthers(dir: string): string[] {
  const open: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p);
    if ((st.mode & 0o077) !== 0) open.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(dir);
  return open;
}

describe('one process per PGlite data directory', () => {
  it('a second process (serve, migrate, reconcile) on a held DATA_DIR exits 2 naming DATA_DIR and the holder pid; after the holder stops, it starts', async () => {
    const dataDir = tempDataDir();
    const first = await serve(dataDir);
    for (const command of [['serve'], ['migrate'], ['reconcile']]) {
      const r = spawnSync(process.execPath, [BIN, ...command], { env: env(dataDir), encoding: 'utf8', timeout: 60_000 });
      expect(r.status, `${command[0]}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr, command[0]).toContain(`DATA_DIR ${dataDir}`);
      expect(r.stderr, command[0]).toContain(`pid ${first.child.pid}`);
    }
    await stop(first.child);
    const migrate = spawnSync(process.execPath, [BIN, 'migrate'], { env: env(dataDir), encoding: 'utf8', timeout: 60_000 });
    expect(migrate.status, migrate.stderr).toBe(0);
  }, 180_000);

  it('a lock left by a dead process is taken over', async () => {
    const dataDir = tempDataDir();
    const m = spawnSync(process.execPath, [BIN, 'migrate'], { env: env(dataDir), encoding: 'utf8', timeout: 60_000 });
    expect(m.status, m.stderr).toBe(0);
    // A pid that cannot be alive (above the kernel's pid_max).
    writeFileSync(join(dataDir, 'orgsync.lock'), JSON.stringify({ pid: 4_194_305, hostname: hostname(), startedAt: new Date().toISOString(), token: 'dead' }));
    const again = spawnSync(process.execPath, [BIN, 'migrate'], { env: env(dataDir), encoding: 'utf8', timeout: 60_000 });
    expect(again.status, again.stderr).toBe(0);
  }, 120_000);

  it("every file and directory under DATA_DIR is the service user's only (no group/other bits)", async () => {
    const dataDir = tempDataDir();
    const first = await serve(dataDir);
    try {
      expect(modesOpenToOthers(dataDir)).toEqual([]);
    } finally {
      await stop(first.child);
    }
  }, 120_000);
});
