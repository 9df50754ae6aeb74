import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { DEFAULT_SCHEDULES, FAST_SCHEDULES, createJobs, schedulesFor } from '../../src/jobs/jobs.js';
import { createSecretBox } from '../../src/services/secret-box.js';
import { bearer, createOrg, startTestApp, verifyDomain } from '../support/app.js';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('schedules from configuration', () => {
  it('defaults, JOBS_FAST, and JOBS_SCHEDULE overrides', () => {
    expect(schedulesFor(loadConfig({}))).toEqual(DEFAULT_SCHEDULES);
    expect(schedulesFor(loadConfig({ JOBS_FAST: 'true' }))).toEqual(FAST_SCHEDULES);
    expect(schedulesFor(loadConfig({ JOBS_SCHEDULE: '{"reconciliation":"0 0 3 * * *"}' }))).toEqual({ ...DEFAULT_SCHEDULES, reconciliation: '0 0 3 * * *' });
    const jobs = createJobs({ config: loadConfig({ JOBS_FAST: 'true' }), mailer: null, box: createSecretBox('x'.repeat(32)) });
    expect(jobs.map((j) => j.name)).toEqual(['outbox-delivery', 'reconciliation', 'trial-ends', 'retention-purge', 'bill-notices']);
  });

  it('a bad JOBS_SCHEDULE or JOBS_FAST is named at start-up', () => {
    expect(problemsOf({ JOBS_SCHEDULE: 'nightly' })[0]).toMatch(/^JOBS_SCHEDULE: must be JSON/);
    expect(problemsOf({ JOBS_SCHEDULE: '{"reconciliation":"every night"}' })[0]).toMatch(/^JOBS_SCHEDULE\.reconciliation: must be a node-cron expression/);
    expect(problemsOf({ JOBS_SCHEDULE: '{"coffee":"* * * * * *"}' })[0]).toMatch(/^JOBS_SCHEDULE/);
    expect(problemsOf({ JOBS_FAST: 'yes' })[0]).toMatch(/^JOBS_FAST/);
  });
});

describe('a service with its jobs on', () => {
  it('delivers the outbox by itself, records its ticks, and waits for running jobs when stopped', async () => {
    const app = await startTestApp({ JOBS_ENABLED: 'true', JOBS_FAST: 'true' });
    try {
      const org = await createOrg(app, 'Jobs On Co');
      await verifyDomain(app, org, 'jobs-on.example');
      await app.http.post(`/api/v1/orgs/${org.id}/subscription/trial`).set(bearer(org.key)).send({}).expect(200);
      const site = (await app.http.post(`/api/v1/orgs/${org.id}/sites`).set(bearer(org.key)).send({ name: 's', products: ['jira'] }).expect(201)).body;
      const acc = (await app.http.post(`/api/v1/orgs/${org.id}/accounts`).set(bearer(org.key)).send({ email: 'a@jobs-on.example' }).expect(201)).body;
      await app.http.post(`/api/v1/orgs/${org.id}/sites/${site.id}/access`).set(bearer(org.key)).send({ accountId: acc.id, product: 'jira' }).expect(201);
      const db = app.svc.db.prisma;
      const deadline = Date.now() + 15_000;
      while ((await db.ledgerEntry.count({ where: { orgId: org.id } })) === 0) {
        if (Date.now() > deadline) throw new Error('the outbox-delivery job never applied the delta');
        await new Promise((r) => setTimeout(r, 100));
      }
      // The tick that applied it records its result right after the job returns.
      const applied = async () => (await db.jobTick.findMany({ where: { job: 'outbox-delivery', finishedAt: { not: null } } }))
        .some((t) => (t.result as { applied?: number }).applied === 1);
      while (!(await applied())) {
        if (Date.now() > deadline) throw new Error('no finished outbox-delivery tick reports the delta');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await app.close();
    }
    expect(app.svc.scheduler.running()).toEqual([]);
  });
});
