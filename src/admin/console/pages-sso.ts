import type { Services } from '../../composition.js';
import type { FieldProblem, SsoCheck } from '../../domain/errors.js';
import { html, raw, type SafeHtml } from '../../http/html.js';
import { checksTable } from '../../sso/pages.js';
import { consolePage, csrfField, errorSummary, fieldError, invalidAttrs, when, type ConsoleNav } from './pages-layout.js';

export type ConnectionView = Awaited<ReturnType<Services['ssoConnections']['get']>>;
export type TestView = ReturnType<Services['ssoConnections']['testView']>;
export type PolicyRef = { id: string; name: string; enforceSso: boolean; ssoConnectionId: string | null };

/** What the add-connection form sent back, to show it again next to its errors. */
export type ConnectionForm = {
  name: string; metadataXml: string; entityId: string; ssoUrl: string; certificate: string;
  jit: boolean; allowIdpInitiated: boolean; rolloutPolicyId: string;
};
export const EMPTY_CONNECTION_FORM: ConnectionForm = { name: '', metadataXml: '', entityId: '', ssoUrl: '', certificate: '', jit: false, allowIdpInitiated: false, rolloutPolicyId: '' };
export type FormError = { title: string; problems: FieldProblem[] };

const policyName = (policies: PolicyRef[], id: string | null | undefined) => (id ? policies.find((p) => p.id === id)?.name ?? id : null);

function verdict(t: TestView): SafeHtml {
  if (t.status !== 'completed') return html`<span class="muted">${t.status === 'expired' ? 'never answered (expired)' : 'waiting for the IdP'}</span>`;
  return t.wouldSucceed ? html`<span class="pass">would succeed</span>` : html`<span class="fail">would be refused</span>`;
}

export function testsTable(c: ConnectionView, tests: TestView[], caption: string): SafeHtml {
  if (!tests.length) return html`<p>No rollout tests yet. Press <strong>Test</strong> to sign in through the IdP once; nothing is created or changed.</p>`;
  return html`<table><caption>${caption}</caption>
<thead><tr><th scope="col">Started</th><th scope="col">Status</th><th scope="col">Verdict</th><th scope="col">Reason</th><th scope="col">Result</th></tr></thead>
<tbody>${tests.map((t) => html`<tr>
<td>${when(t.createdAt)}</td><td>${t.status}</td><td>${verdict(t)}</td><td>${t.reason ?? '—'}</td>
<td><a href="/console/sso/${c.id}/tests/${t.id}">Result of the test started ${when(t.createdAt)}</a></td></tr>`)}</tbody></table>`;
}

/** One connection: what it is, what to paste into the IdP, the Test button. */
export function connectionSection(c: ConnectionView, policies: PolicyRef[], csrf: string, opts: { headingLevel: 2 | 3; link: boolean }): SafeHtml {
  const enforcing = policies.filter((p) => p.enforceSso && p.ssoConnectionId === c.id);
  const h = opts.headingLevel === 2 ? 'h2' : 'h3';
  const title = opts.link ? html`<a href="/console/sso/${c.id}">${c.name}</a>` : html`${c.name}`;
  // The view is a union without a usable discriminant: narrow on the fields each protocol has.
  const saml = 'serviceProvider' in c ? c : null;
  const oidc = 'relyingParty' in c ? c : null;
  const idp = saml
    ? html`<dt>IdP entity id</dt><dd><code>${saml.entityId ?? '—'}</code></dd>
<dt>IdP sign-in URL</dt><dd><code>${saml.ssoUrl ?? '—'}</code></dd>
<dt>Signing certificates</dt><dd>${saml.certificates.map((x) => html`<div>${x.subject} · valid until ${when(x.notAfter)} · SHA-256 <code>${x.sha256Fingerprint}</code></div>`)}</dd>
<dt>IdP-initiated sign-in</dt><dd>${saml.allowIdpInitiated ? 'allowed' : 'refused'}</dd>`
    : oidc
      ? html`<dt>Issuer</dt><dd><code>${oidc.issuer ?? '—'}</code></dd><dt>Client id</dt><dd><code>${oidc.clientId ?? '—'}</code></dd>
<dt>Client secret</dt><dd>${oidc.clientSecretSet ? 'set (never shown)' : 'not set'}</dd>`
      : html``;
  const sp = saml
    ? html`<dt>SP entity id (Audience)</dt><dd><code>${saml.serviceProvider.entityId}</code></dd>
<dt>ACS URL (HTTP-POST)</dt><dd><code>${saml.serviceProvider.acsUrl}</code></dd>
<dt>SP metadata</dt><dd><a href="${saml.serviceProvider.metadataUrl}">${saml.serviceProvider.metadataUrl}</a></dd>`
    : oidc
      ? html`<dt>Redirect URI</dt><dd><code>${oidc.relyingParty.redirectUri}</code></dd>`
      : html``;
  return html`<${raw(h)} id="connection-${c.id}">${title} <span class="muted">(${c.type.toUpperCase()})</span></${raw(h)}>
<dl class="facts">
<dt>Type</dt><dd>${c.type === 'saml' ? 'SAML 2.0' : 'OpenID Connect'}</dd>
${idp}
<dt>Just-in-time accounts</dt><dd>${c.jit ? 'on: a first sign-in on a verified domain creates the account' : 'off'}</dd>
<dt>Rollout policy</dt><dd>${policyName(policies, c.rolloutPolicyId) ?? 'none (new accounts join the default policy)'}</dd>
<dt>Policies enforcing it</dt><dd>${enforcing.length ? enforcing.map((p, i) => html`${i ? ', ' : ''}<a href="/console/policies/${p.id}">${p.name}</a>`) : 'none yet'}</dd>
</dl>
${sp.value ? html`<h${raw(String(opts.headingLevel + 1))}>Paste into the identity provider</h${raw(String(opts.headingLevel + 1))}><dl class="facts">${sp}</dl>` : ''}
<form method="post" action="/console/sso/${c.id}/test">${csrfField(csrf)}
<button type="submit" id="test-${c.id}" aria-describedby="test-help-${c.id}">Test<span class="visually-hidden"> ${c.name}</span></button>
<span class="hint" id="test-help-${c.id}">Signs you in through the IdP once and shows every check; creates no session and changes nothing.</span></form>`;
}

export function connectionsPage(opts: {
  nav: ConsoleNav; connections: { c: ConnectionView; tests: TestView[]; more: boolean }[]; policies: PolicyRef[];
  next: string | null; form: ConnectionForm; formError: FormError | null; status?: string;
}): string {
  const { nav, policies } = opts;
  return consolePage('SSO connections', html`
<p>Roll out single sign-on in steps: add the connection, put a few people in a policy that enforces it,
press <strong>Test</strong> to see what a sign-in would do, then widen the policy.</p>
${opts.connections.length ? '' : html`<p>No SSO connections yet: add one below.</p>`}
${opts.connections.map(({ c, tests, more }) => html`<section class="connection" aria-labelledby="connection-${c.id}">
${connectionSection(c, policies, nav.csrf, { headingLevel: 2, link: true })}
${testsTable(c, tests, `Recent rollout tests of ${c.name}`)}
${more ? html`<p><a href="/console/sso/${c.id}">All rollout tests of ${c.name}</a></p>` : ''}
</section>`)}
${opts.next ? html`<p><a href="/console/sso?cursor=${encodeURIComponent(opts.next)}">More connections</a></p>` : ''}
${addConnectionForm(nav.csrf, policies, opts.form, opts.formError)}`, nav, opts.status ? { status: opts.status } : {});
}

function addConnectionForm(csrf: string, policies: PolicyRef[], f: ConnectionForm, err: FormError | null): SafeHtml {
  const p = err?.problems ?? [];
  return html`<section aria-labelledby="add-connection"><h2 id="add-connection">Add a SAML connection</h2>
${err ? errorSummary('add-connection-errors', err.title, err.problems) : ''}
<form method="post" action="/console/sso">${csrfField(csrf)}
<label for="conn-name">Name</label>
<input type="text" id="conn-name" name="name" required maxlength="200" value="${f.name}"${invalidAttrs('conn-name', p, 'name')}>
${fieldError('conn-name', p, 'name')}
<fieldset><legend>From the identity provider's metadata</legend>
<label for="conn-metadata">IdP metadata XML</label>
<p class="hint" id="conn-metadata-hint">Paste the whole EntityDescriptor; the entity id, sign-in URL and signing certificates are read from it.</p>
<textarea id="conn-metadata" name="metadataXml" rows="6" aria-describedby="conn-metadata-hint"${invalidAttrs('conn-metadata', p, 'metadataXml')}>${f.metadataXml}</textarea>
${fieldError('conn-metadata', p, 'metadataXml')}
</fieldset>
<fieldset><legend>Or the three settings by hand</legend>
<label for="conn-entity">IdP entity id (the Issuer of its responses)</label>
<input type="text" id="conn-entity" name="entityId" maxlength="1024" value="${f.entityId}"${invalidAttrs('conn-entity', p, 'entityId')}>
${fieldError('conn-entity', p, 'entityId')}
<label for="conn-sso-url">IdP sign-in URL (HTTP-Redirect binding)</label>
<input type="url" id="conn-sso-url" name="ssoUrl" maxlength="2048" value="${f.ssoUrl}"${invalidAttrs('conn-sso-url', p, 'ssoUrl')}>
${fieldError('conn-sso-url', p, 'ssoUrl')}
<label for="conn-cert">IdP signing certificate (PEM)</label>
<textarea id="conn-cert" name="certificate" rows="6"${invalidAttrs('conn-cert', p, 'certificate')}>${f.certificate}</textarea>
${fieldError('conn-cert', p, 'certificate')}
</fieldset>
<label for="conn-rollout">Rollout policy (where accounts created at first sign-in go)</label>
<select id="conn-rollout" name="rolloutPolicyId"${invalidAttrs('conn-rollout', p, 'rolloutPolicyId')}>
<option value="">None: the default policy</option>
${policies.map((x) => html`<option value="${x.id}"${f.rolloutPolicyId === x.id ? raw(' selected') : ''}>${x.name}</option>`)}
</select>
${fieldError('conn-rollout', p, 'rolloutPolicyId')}
<label><input type="checkbox" name="jit" value="on"${f.jit ? raw(' checked') : ''}> Create accounts at first sign-in (JIT) for verified domains</label>
<label><input type="checkbox" name="allowIdpInitiated" value="on"${f.allowIdpInitiated ? raw(' checked') : ''}> Allow IdP-initiated sign-in (answers to no request of ours)</label>
<div class="actions"><button type="submit">Add connection</button></div>
</form></section>`;
}

/** GET /console/sso/{id}: the connection and all its rollout tests, newest first, paged. */
export function connectionPage(opts: { nav: ConsoleNav; c: ConnectionView; policies: PolicyRef[]; tests: TestView[]; next: string | null; cursor: string | undefined }): string {
  const { c } = opts;
  return consolePage(`SSO connection: ${c.name}`, html`
<p><a href="/console/sso">All SSO connections</a></p>
${connectionSection(c, opts.policies, opts.nav.csrf, { headingLevel: 2, link: false })}
<h2>Rollout tests</h2>
${testsTable(c, opts.tests, opts.cursor ? `Older rollout tests of ${c.name}` : `Rollout tests of ${c.name}, newest first`)}
${opts.next ? html`<p><a href="/console/sso/${c.id}?cursor=${encodeURIComponent(opts.next)}">Older tests</a></p>` : ''}`, opts.nav);
}

/** GET /console/sso/{id}/tests/{testId}: everything the test saw. */
export function testResultConsolePage(opts: {
  nav: ConsoleNav; c: ConnectionView; t: TestView; account: { id: string; email: string } | null; policy: { id: string; name: string } | null;
}): string {
  const { c, t } = opts;
  const checks = (Array.isArray(t.checks) ? t.checks : []) as SsoCheck[];
  const attributes = (t.attributes && typeof t.attributes === 'object' ? t.attributes : {}) as Record<string, unknown>;
  const profile = (t.profile && typeof t.profile === 'object' ? t.profile : null) as Record<string, unknown> | null;
  const show = (v: unknown) => (v === null || v === undefined || v === '' ? '—' : Array.isArray(v) ? v.map(String).join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const banner = t.status !== 'completed'
    ? html`<div class="notice bad" role="status" id="verdict"><p><strong>${t.status === 'expired' ? 'This test was never answered and its link has expired.' : 'Waiting for the identity provider: the test link has not been answered yet.'}</strong></p>
<p>Start a new test from the connection to try again.</p></div>`
    : html`<div class="notice ${t.wouldSucceed ? 'ok' : 'bad'}" role="status" id="verdict">
<p><strong>${t.wouldSucceed ? 'A real sign-in would succeed.' : 'A real sign-in would be refused.'}</strong></p>
${t.reason ? html`<p>${t.reason}</p>` : ''}<p>This was a test: no session was created and no account was changed.</p></div>`;
  return consolePage(`Rollout test of ${c.name}`, html`
<p><a href="/console/sso/${c.id}">Back to ${c.name}</a> · <a href="/console/sso">All SSO connections</a></p>
${banner}
<dl class="facts">
<dt>Test id</dt><dd><code>${t.id}</code></dd><dt>Started by</dt><dd>${t.startedBy}</dd>
<dt>Started</dt><dd>${when(t.createdAt)}</dd><dt>Answered</dt><dd>${when(t.completedAt)}</dd><dt>Status</dt><dd>${t.status}</dd>
</dl>
${checks.length ? checksTable(checks) : html`<p>No checks were recorded.</p>`}
<h2>Profile we mapped</h2>
${profile ? html`<table><caption>Profile mapped from the answer</caption><tbody>${Object.entries(profile).map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${show(v)}</td></tr>`)}</tbody></table>`
    : html`<p>None: the answer was refused before its profile was read.</p>`}
<h2>Account and policy</h2>
<dl class="facts">
<dt>Account</dt><dd>${opts.account ? opts.account.email : t.accountId ?? (profile && t.wouldSucceed ? 'none yet: a first sign-in would create it (JIT)' : 'none')}</dd>
<dt>Policy</dt><dd>${opts.policy ? html`<a href="/console/policies/${opts.policy.id}">${opts.policy.name}</a>` : t.policyId ?? '—'}</dd>
</dl>
<h2>Attributes received</h2>
${Object.keys(attributes).length
    ? html`<table><caption>Attributes the identity provider sent</caption><thead><tr><th scope="col">Attribute</th><th scope="col">Values</th></tr></thead>
<tbody>${Object.entries(attributes).map(([k, v]) => html`<tr><th scope="row"><code>${k}</code></th><td>${show(v)}</td></tr>`)}</tbody></table>`
    : html`<p>None.</p>`}`, opts.nav);
}
