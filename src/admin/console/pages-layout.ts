import type { FieldProblem } from '../../domain/errors.js';
import { html, page, raw, type SafeHtml } from '../../http/html.js';

/**
 * The frame of every console page: navigation (with the sign-out form), extra styles the shared
 * layout lacks (textareas, field errors), and the small pieces forms share. Every value is
 * escaped by `html`; nothing here runs script.
 */
export type ConsoleNav = { csrf: string; current: 'sso' | 'policies' | null; orgId: string; orgName: string; expiresAt: Date };

const CONSOLE_STYLE = raw(`<style>
textarea{font:inherit;font-family:ui-monospace,Menlo,Consolas,monospace;width:100%;box-sizing:border-box;padding:.3rem .6rem}
textarea:focus,summary:focus{outline:3px solid #0b57d0;outline-offset:2px}
input[type=text],input[type=url],input[type=password],select{min-width:20rem;max-width:100%}
fieldset{border:1px solid #ccc;margin:1rem 0;padding:.5rem 1rem}legend{font-weight:600}
.field-error{color:#b3261e;font-weight:600;margin:.2rem 0}.hint{color:#555;font-size:.92em;margin:.2rem 0}
.visually-hidden{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.inline{display:inline;margin:0}.actions{margin:1rem 0}.muted{color:#555}
header form{margin-left:auto}section.connection{border-top:2px solid #ccc;margin-top:2rem}
code{overflow-wrap:anywhere}dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dl.facts dt{font-weight:600}dl.facts dd{margin:0}
</style>`);

export function consolePage(title: string, body: SafeHtml, nav: ConsoleNav | null, opts: { status?: string } = {}): string {
  const link = (href: string, label: string, key: ConsoleNav['current']) =>
    html`<a href="${href}"${nav?.current === key ? raw(' aria-current="page"') : ''}>${label}</a>`;
  const header = nav
    ? html`<nav aria-label="Console"><strong>orgsync console</strong> <span class="org" title="${nav.orgId}">${nav.orgName}</span> ${link('/console/sso', 'SSO connections', 'sso')} ${link('/console/policies', 'Policies', 'policies')}</nav>
<form method="post" action="/console/sign-out" class="inline">${csrfField(nav.csrf)}<button type="submit">Sign out</button></form>`
    : html`<strong>orgsync console</strong>`;
  return page(title, html`${CONSOLE_STYLE}${opts.status ? html`<div class="notice ok" role="status"><p>${opts.status}</p></div>` : ''}${body}`, { nav: header });
}

export const csrfField = (token: string) => html`<input type="hidden" name="csrf" value="${token}">`;

/** The problems of a refused form, listed at its top (role=alert so screen readers announce them). */
export function errorSummary(id: string, title: string, problems: readonly FieldProblem[] = []): SafeHtml {
  return html`<div class="notice bad" role="alert" id="${id}" tabindex="-1"><p><strong>${title}</strong></p>
${problems.length ? html`<ul>${problems.map((p) => html`<li>${p.path ? html`<code>${p.path}</code>: ` : ''}${p.message}</li>`)}</ul>` : ''}</div>`;
}

/** A field's own error line; pair with `describedBy` on the control. */
export function fieldError(id: string, problems: readonly FieldProblem[], path: string): SafeHtml {
  const mine = problems.filter((p) => p.path === path || p.path.startsWith(`${path}.`));
  return mine.length ? html`<p class="field-error" id="${id}-error">${mine.map((p) => p.message).join('; ')}</p>` : html``;
}

export const invalidAttrs = (id: string, problems: readonly FieldProblem[], path: string) =>
  problems.some((p) => p.path === path || p.path.startsWith(`${path}.`)) ? raw(` aria-invalid="true" aria-describedby="${id}-error"`) : raw('');

export const yesNo = (b: boolean | null | undefined) => (b ? 'yes' : 'no');

export const when = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—');
