import { pino, type Logger } from 'pino';

export type { Logger };

/** Secrets never reach the log: bearer tokens, admin keys, SCIM bodies, SAML responses. */
const redact = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.adminKey',
  '*.token',
  '*.secret',
  '*.clientSecret',
  '*.SAMLResponse',
];

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: redact, censor: '[redacted]' }, base: { service: 'orgsync' } });
}
