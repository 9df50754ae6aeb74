import { html } from '../../http/html.js';
import { consolePage, csrfField } from './pages-layout.js';

export type SignInMessage = { kind: 'error' | 'info'; text: string };

/** GET /console without a session: one field, the org's admin key. */
export function signInPage(opts: { csrf: string; message?: SignInMessage | null }): string {
  const m = opts.message ?? null;
  return consolePage('Sign in to the console', html`
${m ? html`<div class="notice ${m.kind === 'error' ? 'bad' : 'ok'}" role="${m.kind === 'error' ? 'alert' : 'status'}" id="sign-in-message"><p>${m.text}</p></div>` : ''}
<p>Sign in with one of your organization's admin keys (the key <code>POST /api/v1/orgs</code> or
<code>POST …/admin-keys</code> returned). The console checks it once and keeps only a session, which ends
when you sign out, when the key is revoked, or after a few hours.</p>
<form method="post" action="/console/sign-in">
${csrfField(opts.csrf)}
<label for="admin-key">Admin key</label>
<input type="password" id="admin-key" name="adminKey" required autocomplete="off" spellcheck="false"${m?.kind === 'error' ? html` aria-invalid="true" aria-describedby="sign-in-message"` : ''}>
<div class="actions"><button type="submit">Sign in</button></div>
</form>`, null);
}
