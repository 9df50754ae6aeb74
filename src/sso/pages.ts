import type { SsoCheck } from '../domain/errors.js';
import type { SsoTestRunRow } from '../store/sso-store.js';
import { html, page, type SafeHtml } from '../http/html.js';

/** The pages a browser sees during SSO: a refusal, the rollout test's result, and /me. */
export function refusalPage(opts: { status: number; reason: string; message: string; requestId: string; checks?: readonly SsoCheck[] }): string {
  return page('Sign-in refused', html`
<div class="notice bad" role="alert"><p><strong>${opts.message}</strong></p>
<p>Reason: <code>${opts.reason}</code> · request id <code>${opts.requestId}</code></p></div>
${opts.checks?.length ? checksTable(opts.checks) : ''}
<p>Ask your administrator for help, quoting the request id. <a href="/me">Your session</a></p>`);
}

export function checksTable(checks: readonly SsoCheck[]): SafeHtml {
  return html`<table><caption>Checks</caption><thead><tr><th scope="col">Check</th><th scope="col">Result</th><th scope="col">Detail</th></tr></thead><tbody>
${checks.map((c) => html`<tr><td>${c.name}</td><td class="${c.passed ? 'pass' : 'fail'}">${c.passed ? 'passed' : 'failed'}</td><td>${c.detail}</td></tr>`)}
</tbody></table>`;
}

export function testResultPage(run: SsoTestRunRow, opts: { connectionName: string; accountEmail?: string | null; policyName?: string | null; consoleUrl?: string }): string {
  const checks = (run.checks ?? []) as SsoCheck[];
  const profile = run.profile as Record<string, unknown> | null;
  return page(`SSO test: ${opts.connectionName}`, html`
<div class="notice ${run.wouldSucceed ? 'ok' : 'bad'}" role="status" id="verdict">
<p><strong>${run.wouldSucceed ? 'A real sign-in would succeed.' : 'A real sign-in would be refused.'}</strong></p>
${run.reason ? html`<p>${run.reason}</p>` : ''}
<p>This was a test: no session was created and no account was changed.</p></div>
${checksTable(checks)}
<h2>Profile we mapped</h2>
${profile ? html`<table><tbody>${Object.entries(profile).map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${v ?? '—'}</td></tr>`)}</tbody></table>` : html`<p>None (the answer was refused before it was read).</p>`}
<h2>Account and policy</h2>
<p>Account: ${opts.accountEmail ?? (run.accountId ?? 'none yet')} · Policy: ${opts.policyName ?? run.policyId ?? '—'}</p>
<h2>Attributes received</h2>
<pre>${JSON.stringify(run.attributes ?? {}, null, 2)}</pre>
<p><a href="${opts.consoleUrl ?? `/console/sso/${run.connectionId}/tests/${run.id}`}">Back to the console</a> (this result, with the account and policy names)</p>`);
}

export function mePage(me: { account: { email: string; displayName: string | null }; org: { name: string } | null; policy: { name: string } | null; session: { method: string; connection: { name: string } | null; expiresAt: Date } }): string {
  return page('Signed in', html`
<p id="me-email">Signed in as <strong>${me.account.email}</strong>${me.account.displayName ? html` (${me.account.displayName})` : ''}</p>
<table><tbody>
<tr><th scope="row">Organization</th><td>${me.org?.name ?? '—'}</td></tr>
<tr><th scope="row">Policy</th><td>${me.policy?.name ?? '—'}</td></tr>
<tr><th scope="row">Signed in with</th><td>${me.session.method.toUpperCase()}${me.session.connection ? html` via ${me.session.connection.name}` : ''}</td></tr>
<tr><th scope="row">Session ends</th><td>${me.session.expiresAt.toISOString()}</td></tr>
</tbody></table>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>`);
}
