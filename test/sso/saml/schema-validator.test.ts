/**
 * The libxml2-wasm schema validator: real XSD validation, one instance reused, fail closed.
 */
import samlify from 'samlify';
import { beforeAll, describe, expect, it } from 'vitest';
import { validate, validateSamlSchema, warmSamlValidator } from '../../../src/sso/saml/schema-validator.js';
import { idpResponse, testConnection } from '../../support/saml-idp.js';

beforeAll(async () => {
  await warmSamlValidator();
});

describe('SAML schema validator', () => {
  it('accepts a signed response from a real IdP', async () => {
    const { xml } = await idpResponse(testConnection(), { sign: 'both', attributes: { email: 'a@example.com' } });
    expect(validateSamlSchema(xml)).toEqual({ valid: true });
    await expect(validate(xml)).resolves.toBe(true);
  });

  it.each([
    ['an unknown element in the Response', (x: string) => x.replace('<samlp:Status>', '<samlp:Bogus/><samlp:Status>')],
    ['a missing IssueInstant', (x: string) => x.replace(/ IssueInstant="[^"]*"/, '')],
    ['a malformed dateTime', (x: string) => x.replace(/NotOnOrAfter="[^"]*"/, 'NotOnOrAfter="tomorrow"')],
    ['a ds:Signature without SignedInfo (the xmldsig import is live)', (x: string) => x.replace(/<ds:SignedInfo>[\s\S]*?<\/ds:SignedInfo>/, '')],
    ['elements in the wrong order', (x: string) => x.replace(/(<saml:Issuer>[^<]*<\/saml:Issuer>)(<samlp:Status>.*?<\/samlp:Status>)/, '$2$1')],
    ['not well-formed XML', (x: string) => x.slice(0, -5)],
    ['a DOCTYPE', (x: string) => `<!DOCTYPE x>${x}`],
    ['an element that is not a SAML message', () => '<html/>'],
  ])('refuses %s', async (_what, edit) => {
    const { xml } = await idpResponse(testConnection());
    const edited = edit(xml);
    const result = validateSamlSchema(edited);
    expect(result.valid).toBe(false);
    if (!result.valid) expect(result.errors.length).toBeGreaterThan(0);
    await expect(validate(edited)).rejects.toThrow(/ERR_SCHEMA_INVALID/);
  });

  it('is the validator samlify uses', async () => {
    const { xml } = await idpResponse(testConnection());
    await expect(samlify.SamlLib.isValidXml(xml)).resolves.toBe(true);
    await expect(samlify.SamlLib.isValidXml(xml.replace('<samlp:Status>', '<samlp:Bogus/><samlp:Status>'))).rejects.toThrow(/ERR_SCHEMA_INVALID/);
  });

  it('stays fast and stable over many calls (one validator instance)', async () => {
    const { xml } = await idpResponse(testConnection(), { attributes: { email: 'a@example.com' } });
    const started = performance.now();
    for (let i = 0; i < 200; i++) expect(validateSamlSchema(xml).valid).toBe(true);
    const perCall = (performance.now() - started) / 200;
    expect(perCall, `${perCall.toFixed(2)} ms per call`).toBeLessThan(20);
  });
});
