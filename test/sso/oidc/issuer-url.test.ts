import { describe, expect, it } from 'vitest';
import { parseIssuerUrl } from '../../../src/sso/oidc/index.js';

/** Which issuers we talk to, and when openid-client's allowInsecureRequests is turned on. */
describe('parseIssuerUrl', () => {
  it.each([
    ['https://idp.example.com', false],
    ['https://login.example.com/realms/acme', false],
    ['https://10.1.2.3:8443', false],
    ['https://[2001:db8::1]:9443/oidc', false],
    ['http://127.0.0.1:4000', true],
    ['http://127.1:4000', true],
    ['http://127.9.8.7', true],
    ['http://localhost:8080/realms/x', true],
    ['http://LOCALHOST', true],
    ['http://[::1]:5556/dex', true],
    ['http://[0:0:0:0:0:0:0:1]:5556', true],
  ])('accepts %s (insecure: %s)', (issuer, insecure) => {
    expect(parseIssuerUrl(issuer).insecure, issuer).toBe(insecure);
  });

  it.each([
    ['http://idp.example.com', /plain http/],
    ['http://10.0.0.1', /plain http/],
    ['http://127.0.0.1.nip.io', /plain http/],
    ['http://localhost.attacker.example', /plain http/],
    ['http://[::ffff:127.0.0.1]', /plain http/],
    ['ftp://idp.example.com', /not supported/],
    ['https://idp.example.com/?x=1', /no query or fragment/],
    ['https://idp.example.com/#f', /no query or fragment/],
    ['https://user:pw@idp.example.com', /user name or password/],
    ['idp.example.com', /not a URL/],
  ])('refuses %s', (issuer, message) => {
    expect(() => parseIssuerUrl(issuer)).toThrow(message);
  });
});
