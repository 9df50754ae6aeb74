/**
 * `npx tsx bench/saml-verify.ts [--iterations 1000] [--sign assertion|response|both] [--pool N] [--concurrency 10]`
 *
 * CPU cost of one SAML verification (`verifySamlResponse`: decode → schema → signature →
 * checks) for the ~11 KB signed, attribute-padded, IdP-initiated response that bench:sso posts,
 * in this process, without HTTP or database. Prints mean / median / p95 / p99 ms per call and
 * the calls per second of one core.
 *
 * With --pool N it also drives the worker pool the ACS uses (`SamlVerifierPool`, N threads),
 * --concurrency calls in flight, and prints its throughput and latency percentiles.
 *
 * Options:
 *   --iterations N   measured calls (default 1000, after 100 warm-up calls)
 *   --sign WHAT      which element the IdP signs (default assertion)
 *   --pool N         also measure a pool of N worker threads (default: off)
 *   --concurrency N  calls in flight for the pool measurement (default 10)
 */
import { parseArgs } from 'node:util';
import { warmSamlValidator } from '../src/sso/saml/schema-validator.js';
import { verifySamlResponse, type SamlVerifyOptions } from '../src/sso/saml/verify.js';
import { SamlVerifierPool } from '../src/sso/saml/pool.js';
import { idpResponse, SAML_KEYS } from '../test/support/saml-idp.js';
import { printHeaderHelpAndExit } from './help.js';

const { values: argv } = parseArgs({
  options: {
    iterations: { type: 'string', default: '1000' },
    sign: { type: 'string', default: 'assertion' },
    pool: { type: 'string' },
    concurrency: { type: 'string', default: '10' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) printHeaderHelpAndExit(import.meta.url);
const ITERATIONS = Number.parseInt(argv.iterations!, 10);
const WARMUP = 100;
const sign = argv.sign as 'assertion' | 'response' | 'both';
if (!['assertion', 'response', 'both'].includes(sign)) throw new Error('--sign must be assertion, response or both');
if (!(ITERATIONS >= 1 && ITERATIONS <= 100_000)) throw new Error('--iterations must be in 1..100000');

const publicUrl = 'http://127.0.0.1:1';
const conn = { id: 'bench', entityId: 'https://idp.bench.example/saml/metadata', ssoUrl: 'https://idp.bench.example/sso', certificates: [SAML_KEYS.idp.certificate], allowIdpInitiated: true };
// The same padding as bench/sso.ts: ~11 KB of XML.
const padding = Object.fromEntries(Array.from({ length: 22 }, (_, i) => [`http://schemas.bench.example/claims/group${i}`, `group-${i}-${'x'.repeat(120)}`]));

const total = WARMUP + ITERATIONS;
process.stdout.write(`generating ${total} signed responses (${sign})… `);
const responses: string[] = [];
for (let i = 0; i < total; i++) {
  responses.push((await idpResponse(conn, { sign, nameId: `user${i}@bench.example`, inResponseTo: null, attributes: padding }, publicUrl)).base64);
}
process.stdout.write(`done (${(Buffer.from(responses[0]!, 'base64').length / 1024).toFixed(1)} KB of XML each)\n`);

const opts = (): SamlVerifyOptions => ({ publicUrl, clockSkewSeconds: 60, allowSha1: false, verifyTimeoutMs: 10_000, now: new Date() });

function summary(samples: number[], elapsedMs: number): string {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return `mean ${mean.toFixed(2)} ms, median ${at(0.5).toFixed(2)}, p95 ${at(0.95).toFixed(2)}, p99 ${at(0.99).toFixed(2)}, max ${s.at(-1)!.toFixed(2)} ` +
    `(n=${s.length}; ${(s.length / (elapsedMs / 1000)).toFixed(0)}/s)`;
}

await warmSamlValidator();
for (let i = 0; i < WARMUP; i++) await verifySamlResponse(conn, responses[i]!, opts());
const samples: number[] = [];
const t0 = performance.now();
for (let i = WARMUP; i < total; i++) {
  const start = performance.now();
  await verifySamlResponse(conn, responses[i]!, opts());
  samples.push(performance.now() - start);
}
console.log(`verifySamlResponse, this thread: ${summary(samples, performance.now() - t0)}`);

if (argv.pool !== undefined) {
  const size = Number.parseInt(argv.pool, 10);
  const concurrency = Number.parseInt(argv.concurrency!, 10);
  const pool = new SamlVerifierPool({ size });
  const s0 = performance.now();
  await pool.start();
  console.log(`pool of ${size} started and warmed in ${(performance.now() - s0).toFixed(0)} ms`);
  for (let i = 0; i < WARMUP; i++) await pool.verify(conn, responses[i]!, opts());
  const lat: number[] = [];
  let next = WARMUP;
  const p0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      const r = responses[next++]!;
      const start = performance.now();
      await pool.verify(conn, r, opts());
      lat.push(performance.now() - start);
    }
  }));
  console.log(`SamlVerifierPool(${size}), ${concurrency} in flight: ${summary(lat, performance.now() - p0)}`);
  await pool.close();
}
