import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from '../config.js';
import { PROBLEM_BASE } from './problem.js';

type Timeouts = Pick<Config['http'], 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'>;

/**
 * The HTTP server with its time limits (issue 12 §5: a body trickled a byte at a time held a
 * connection open for as long as the client liked).
 *
 * - headersTimeout: the request line and headers must arrive within it (slowloris);
 * - requestTimeout: the whole request, body included, must arrive within it. This covers only
 *   receiving the request: once the body is complete the handler may take as long as it needs;
 * - keepAliveTimeout: an idle keep-alive connection is closed after it.
 *
 * Node checks the first two every `connectionsCheckingInterval` (30 s by default, far coarser
 * than the limits): it runs here at a tenth of the shorter limit, at most once a second.
 * A request past its limit is answered 408 (RFC 9110 §15.5.9) with a problem body and
 * `Connection: close`, and its socket is destroyed; the body parser then sees the request
 * aborted and its answer goes nowhere.
 */
export function createHttpServer(app: RequestListener, t: Timeouts): Server {
  const shorter = Math.min(t.headersTimeoutMs, t.requestTimeoutMs);
  const server = createServer({
    headersTimeout: t.headersTimeoutMs,
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: t.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(shorter / 10))),
  }, app);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => onClientError(err, socket, t));
  return server;
}

/** Node's bare answers for the other client errors (what it sends when nobody listens for `clientError`). */
const BARE: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
};

/**
 * Once a `clientError` listener exists Node leaves the answer to it, so this does what Node does
 * for every error (answer only when no byte of a response to this request was sent, then destroy
 * the socket), with a problem body for the timeout.
 */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex, t: Timeouts): void {
  // The response of the request in progress, if it was dispatched (Node's own bookkeeping).
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      const body = JSON.stringify({
        type: `${PROBLEM_BASE}/request-timeout`, title: 'Request timeout', status: 408,
        detail: `the request did not arrive in time: its headers must arrive within ${t.headersTimeoutMs} ms and the whole request, body included, within ${t.requestTimeoutMs} ms`,
      });
      socket.write(`HTTP/1.1 408 Request Timeout\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    } else if (err.code !== 'ECONNRESET') {
      socket.write(`HTTP/1.1 ${BARE[err.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
    }
  }
  // Without an error argument: Node has already detached its own error handling from this socket.
  socket.destroy();
}
