/**
 * Per-call cost of SAML schema validation for a ~10 KB signed response:
 * our libxml2-wasm validator (one XsdValidator reused) vs @authenio/samlify-xmllint-wasm
 * (xmllint-wasm, a fresh wasm instance per call), plus the whole verifySamlResponse.
 *
 *   npx tsx bench/saml-validator.ts [iterations]
 */
import { createRequire } from 'node:module';
import { validateSamlSchema, warmSamlValidator } from '../src/sso/saml/schema-validator.js';
import { verifySamlResponse } from '../src/sso/saml/verify.js';
import { idpResponse, testConnection, TEST_PUBLIC_URL } from '../test/support/saml-idp.js';

// A dev dependency without type declarations.
const xmllint = createRequire(import.meta.url)('@authenio/samlify-xmllint-wasm') as { validate(xml: string): Promise<boolean> };
const iterations = Number(process.argv[2] ?? 500);

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return `mean ${mean.toFixed(2)} ms, median ${at(0.5).toFixed(2)} ms, p95 ${at(0.95).toFixed(2)} ms (n=${s.length})`;
}

async function time(n: number, fn: () => unknown | Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const conn = testConnection();
const attributes: Record<string, string[]> = {};
for (let i = 0; i < 15; i++) attributes[`http://schemas.example.com/claims/attribute-${i}`] = [`value-${i}-${'x'.repeat(40)}`];
const { xml, base64 } = await idpResponse(conn, { sign: 'both', attributes });
console.log(`response: ${(Buffer.byteLength(xml) / 1024).toFixed(1)} KB (base64 ${(base64.length / 1024).toFixed(1)} KB)`);

const warmStart = performance.now();
await warmSamlValidator();
console.log(`warmSamlValidator (compile schemas + self-test): ${(performance.now() - warmStart).toFixed(1)} ms`);

if (!validateSamlSchema(xml).valid) throw new Error('the bench response is not schema-valid');
await time(50, () => validateSamlSchema(xml)); // JIT warm-up
console.log(`libxml2-wasm XsdValidator (reused):   ${stats(await time(iterations, () => validateSamlSchema(xml)))}`);

await time(2000, () => validateSamlSchema(xml));
const rssBefore = process.memoryUsage().rss;
await time(10_000, () => validateSamlSchema(xml));
console.log(`  rss growth over 10 000 further calls: ${((process.memoryUsage().rss - rssBefore) / 1024 / 1024).toFixed(1)} MB`);

const opts = { publicUrl: TEST_PUBLIC_URL, clockSkewSeconds: 60, allowSha1: false, verifyTimeoutMs: 10_000, now: new Date() };
await time(20, () => verifySamlResponse(conn, base64, opts));
console.log(`verifySamlResponse (everything):      ${stats(await time(Math.min(iterations, 200), () => verifySamlResponse(conn, base64, opts)))}`);

const xmllintRuns = Math.min(iterations, 20);
await xmllint.validate(xml);
console.log(`@authenio/samlify-xmllint-wasm:       ${stats(await time(xmllintRuns, () => xmllint.validate(xml)))}`);
