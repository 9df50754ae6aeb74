/**
 * A SAML verification worker thread (see ./pool.ts): warms its own XSD validator (libxml2-wasm
 * compiles the schemas once per thread), says `ready`, then runs `verifySamlResponse` for each
 * request and answers with the VerifiedAnswer, or the SsoRefused as plain data (reason, message,
 * checks, status), or any other error's message.
 */
import { parentPort } from 'node:worker_threads';
import { SsoRefused } from '../../domain/errors.js';
import { warmSamlValidator } from './schema-validator.js';
import { verifySamlResponse } from './verify.js';
import type { WorkerMessage, WorkerRequest } from './pool.js';

const port = parentPort;
if (!port) throw new Error('verify-worker runs as a worker thread (see pool.ts)');
const post = (m: WorkerMessage) => port.postMessage(m);

let warm: Error | null = null;
try {
  await warmSamlValidator();
} catch (err) {
  warm = err instanceof Error ? err : new Error(String(err));
}
if (warm) {
  // The pool terminates this thread on `failed`.
  post({ type: 'failed', message: warm.message });
} else {
  port.on('message', onRequest);
  post({ type: 'ready' });
}

async function onRequest(req: WorkerRequest): Promise<void> {
  try {
    const answer = await verifySamlResponse(req.conn, req.samlResponse, req.opts);
    post({ type: 'answer', id: req.id, answer });
  } catch (err) {
    if (err instanceof SsoRefused) {
      post({ type: 'refused', id: req.id, reason: err.reason, message: err.message, checks: [...err.checks], status: err.status });
    } else {
      post({ type: 'error', id: req.id, message: String((err as Error)?.message ?? err), stack: (err as Error)?.stack ?? null });
    }
  }
}
