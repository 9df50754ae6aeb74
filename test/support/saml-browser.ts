import { inflateRawSync } from 'node:zlib';
import type { TestApp } from './app.js';
import { idpResponse, SAML_KEYS, TEST_IDP_ENTITY_ID, TEST_IDP_SSO_URL, type IdpResponseOptions } from './saml-idp.js';

/**
 * One browser signing in through a SAML connection whose IdP is the tests' (fixtures/saml key):
 * it starts at orgsync (SP-initiated, or any orgsync URL that redirects to the IdP, such as a
 * rollout test link), keeps the flow cookie, and posts the IdP's signed answer to the ACS.
 */
export function samlBrowser(app: TestApp, publicUrl: string) {
  let flowCookie = '';
  return {
    /** The ACS's answer (expected to have `status`) to `email` signing in at `conn`, the IdP answering with `opts`. */
    async signIn(conn: string, status: number, email: string, opts: IdpResponseOptions = {}, startPath = `/sso/${conn}/saml/login?email=${encodeURIComponent(email)}`) {
      const go = await app.http.get(startPath).set(flowCookie ? { Cookie: flowCookie } : {}).expect(302);
      flowCookie = ([] as string[]).concat((go.headers['set-cookie'] as string[] | undefined) ?? []).map((c) => c.split(';')[0] ?? '')
        .filter((c) => c.startsWith('orgsync_flow=')).join('; ') || flowCookie;
      const location = new URL(go.headers.location!);
      const xml = inflateRawSync(Buffer.from(location.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      const r = await idpResponse({ id: conn, entityId: TEST_IDP_ENTITY_ID, ssoUrl: TEST_IDP_SSO_URL, certificates: [SAML_KEYS.idp.certificate], allowIdpInitiated: false },
        { nameId: email, inResponseTo: /ID="([^"]+)"/.exec(xml)![1]!, ...opts }, publicUrl);
      const relayState = location.searchParams.get('RelayState');
      return app.http.post(`/sso/${conn}/saml/acs`).type('form').set(flowCookie ? { Cookie: flowCookie } : {})
        .send({ SAMLResponse: r.base64, ...(relayState ? { RelayState: relayState } : {}) }).expect(status);
    },
  };
}
