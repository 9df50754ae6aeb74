import type { Services } from '../../composition.js';
import { html, raw, type SafeHtml } from '../../http/html.js';
import { consolePage, csrfField, errorSummary, fieldError, invalidAttrs, when, yesNo, type ConsoleNav } from './pages-layout.js';
import type { FormError } from './pages-sso.js';

export type PolicyView = Awaited<ReturnType<Services['policies']['get']>>;
export type MemberView = Awaited<ReturnType<Services['policies']['members']>>['items'][number];
export type MoveForm = { policyId: string; emails: string };

const minutes = (m: number) => (m % 1440 === 0 ? `${m / 1440} d` : m % 60 === 0 ? `${m / 60} h` : `${m} min`);

function settings(p: PolicyView, connections: Map<string, string>): SafeHtml {
  const conn = p.ssoConnectionId ? connections.get(p.ssoConnectionId) ?? p.ssoConnectionId : null;
  return html`<dl class="facts">
<dt>Default policy</dt><dd>${yesNo(p.isDefault)}</dd>
<dt>Non-billable</dt><dd>${yesNo(p.nonBillable)}</dd>
<dt>Enforces SSO</dt><dd>${p.enforceSso ? html`yes, through <a href="/console/sso/${p.ssoConnectionId}">${conn}</a>` : 'no'}</dd>
<dt>Two-step verification</dt><dd>${p.requireTwoFactor ? 'required' : 'not required'}</dd>
<dt>API tokens</dt><dd>${p.blockApiTokens ? 'blocked' : 'allowed'}</dd>
<dt>Session duration</dt><dd>${minutes(p.sessionDurationMinutes)}</dd>
<dt>Members</dt><dd>${p.memberCount ?? 0}</dd>
</dl>`;
}

function membersTable(p: PolicyView, members: MemberView[], caption: string): SafeHtml {
  if (!members.length) return html`<p>No members.</p>`;
  return html`<table><caption>${caption}</caption>
<thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Source</th><th scope="col">Status</th><th scope="col">Since</th></tr></thead>
<tbody>${members.map((m) => html`<tr><th scope="row">${m.email}</th><td>${m.displayName ?? '—'}</td><td>${m.source}</td><td>${m.status}</td><td>${when(m.createdAt)}</td></tr>`)}</tbody></table>`;
}

/** The move-accounts form: a target policy and a few emails. */
export function moveForm(csrf: string, policies: PolicyView[], f: MoveForm, err: FormError | null): SafeHtml {
  const p = err?.problems ?? [];
  return html`<section aria-labelledby="move-accounts"><h2 id="move-accounts">Move accounts into a rollout policy</h2>
<p>Moves each account out of its current policy. Either every account moves or none does.</p>
${err ? errorSummary('move-errors', err.title, err.problems) : ''}
<form method="post" action="/console/policies/members">${csrfField(csrf)}
<label for="move-policy">Policy</label>
<select id="move-policy" name="policyId" required${invalidAttrs('move-policy', p, 'policyId')}>
${policies.map((x) => html`<option value="${x.id}"${f.policyId === x.id ? raw(' selected') : ''}>${x.name}${x.enforceSso ? ' (enforces SSO)' : ''}${x.isDefault ? ' (default)' : ''}</option>`)}
</select>
${fieldError('move-policy', p, 'policyId')}
<label for="move-emails">Email addresses, one per line</label>
<p class="hint" id="move-emails-hint">At most 100 at a time. Commas and spaces also separate addresses.</p>
<textarea id="move-emails" name="emails" rows="5" required aria-describedby="move-emails-hint"${invalidAttrs('move-emails', p, 'emails')}>${f.emails}</textarea>
${fieldError('move-emails', p, 'emails')}
<div class="actions"><button type="submit">Move accounts</button></div>
</form></section>`;
}

export function policiesPage(opts: {
  nav: ConsoleNav; policies: { p: PolicyView; members: MemberView[]; more: boolean }[]; connections: Map<string, string>;
  form: MoveForm; formError: FormError | null; status?: string;
}): string {
  const all = opts.policies.map((x) => x.p);
  return consolePage('Policies', html`
<p>Each managed account belongs to one policy; its policy decides how the person signs in.</p>
<table><caption>Policies and their settings</caption>
<thead><tr><th scope="col">Policy</th><th scope="col">Default</th><th scope="col">Non-billable</th><th scope="col">Enforces SSO</th>
<th scope="col">Two-step verification</th><th scope="col">Session</th><th scope="col">Members</th></tr></thead>
<tbody>${all.map((p) => html`<tr><th scope="row"><a href="/console/policies/${p.id}">${p.name}</a></th><td>${yesNo(p.isDefault)}</td><td>${yesNo(p.nonBillable)}</td>
<td>${p.enforceSso ? html`through ${opts.connections.get(p.ssoConnectionId ?? '') ?? p.ssoConnectionId}` : 'no'}</td><td>${p.requireTwoFactor ? 'required' : 'no'}</td>
<td>${minutes(p.sessionDurationMinutes)}</td><td>${p.memberCount ?? 0}</td></tr>`)}</tbody></table>
${moveForm(opts.nav.csrf, all, opts.form, opts.formError)}
${opts.policies.map(({ p, members, more }) => html`<section aria-labelledby="policy-${p.id}"><h2 id="policy-${p.id}"><a href="/console/policies/${p.id}">${p.name}</a></h2>
${settings(p, opts.connections)}
${membersTable(p, members, `Members of ${p.name}${more ? ' (first page)' : ''}`)}
${more ? html`<p><a href="/console/policies/${p.id}">All members of ${p.name}</a></p>` : ''}</section>`)}`, opts.nav, opts.status ? { status: opts.status } : {});
}

/** GET /console/policies/{id}: one policy, its members paged. */
export function policyPage(opts: {
  nav: ConsoleNav; p: PolicyView; all: PolicyView[]; members: MemberView[]; next: string | null; cursor: string | undefined;
  connections: Map<string, string>; status?: string;
}): string {
  const { p } = opts;
  return consolePage(`Policy: ${p.name}`, html`
<p><a href="/console/policies">All policies</a></p>
${settings(p, opts.connections)}
<h2>Members</h2>
${membersTable(p, opts.members, opts.cursor ? `Members of ${p.name} (continued)` : `Members of ${p.name}`)}
${opts.next ? html`<p><a href="/console/policies/${p.id}?cursor=${encodeURIComponent(opts.next)}">More members</a></p>` : ''}
${moveForm(opts.nav.csrf, opts.all, { policyId: p.id, emails: '' }, null)}`, opts.nav, opts.status ? { status: opts.status } : {});
}
