/**
 * `npm run conformance`: starts orgsync on a fresh in-memory database, creates an org and a
 * directory, and runs the third-party SCIM suites in ../shared/conformance against it.
 * Exit status is the suites' (0 only when every assertion passed).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/server.js';

const root = join(import.meta.dirname, '..', '..');
const suite = process.env.CONFORMANCE_DIR ?? join(root, '..', 'shared', 'conformance');
if (!existsSync(join(suite, 'run.sh'))) {
  console.error(`no conformance suites at ${suite} (set CONFORMANCE_DIR)`);
  process.exit(2);
}

const operator = randomBytes(24).toString('base64url');
const config = loadConfig({
  PORT: '0', HOST: '127.0.0.1', DATA_DIR: 'memory', ORGSYNC_OPERATOR_TOKEN: operator, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  SCIM_RATE_LIMIT_PER_SECOND: '10000', SCIM_RATE_LIMIT_BURST: '10000',
});
const svc = await startService({ ...config, http: { ...config.http, publicUrl: 'http://127.0.0.1' } });
const url = svc.url;
const call = async (path: string, token: string, body: unknown) => {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, string>;
};
const org = await call('/api/v1/orgs', operator, { name: 'Conformance' });
const dir = await call(`/api/v1/orgs/${org.id}/directories`, org.adminKey!, { name: 'conformance', idp: "entra" });
const base = `${url}/scim/v2/${dir.id}`;
console.log(`orgsync at ${url}; SCIM base ${base}`);

const code = await new Promise<number>((resolve) => {
  const child = spawn('bash', [join(suite, 'run.sh')], {
    stdio: 'inherit',
    env: { ...process.env, BASE: base, TOKEN: dir.token!, NEWMAN: join(root, 'node_modules', '.bin', 'newman') },
  });
  child.on('exit', (c) => resolve(c ?? 1));
});
await svc.stop();
process.exit(code);
