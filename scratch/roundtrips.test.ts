import { it } from 'vitest';
import net from 'node:net';
import pg from 'pg';
import { startTestApp } from '../test/support/app.js';
import { orgWithDirectory, scim, user, PATCH_OP } from '../test/support/scim.js';

it('counts', async () => {
  const app = await startTestApp();
  const dir = await orgWithDirectory(app, { domain: 'acme.example' });
  const s = scim(app, dir);
  const created = await s.post('/Users', user('ann@acme.example'));
  const id = created.body.id;
  const log: string[] = [];
  let writes = 0;
  const w1 = net.Socket.prototype._writev as any, w2 = net.Socket.prototype._write as any;
  (net.Socket.prototype as any)._writev = function (...a: any[]) { if (this.remotePort === 5432) writes++; return w1.apply(this, a); };
  (net.Socket.prototype as any)._write = function (...a: any[]) { if (this.remotePort === 5432) writes++; return w2.apply(this, a); };
  const q = pg.Client.prototype.query as any;
  (pg.Client.prototype as any).query = function (c: any, ...r: any[]) { log.push(String(typeof c === 'string' ? c : c?.text ?? c?.name).replace(/\s+/g, ' ').slice(0, 140)); return q.call(this, c, ...r); };
  for (const op of [{ op: 'replace', path: 'displayName', value: 'X Y' }, { op: 'replace', value: { active: false } }, { op: 'replace', path: 'displayName', value: 'X Z' }, { op: 'replace', value: { active: true } }]) {
    log.length = 0; writes = 0;
    const r = await s.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [op] });
    console.log(JSON.stringify(op), r.status, 'queries', log.length, 'writes', writes, '\n  ' + log.join('\n  '));
  }
  await app.close();
}, 60000);
