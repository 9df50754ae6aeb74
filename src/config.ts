import ipaddr from 'ipaddr.js';
import { availableParallelism } from 'node:os';
import cron from 'node-cron';
import { z } from 'zod';

/**
 * The one validated configuration object. Nothing else in the service reads process.env:
 * each consumer takes the slice it needs (`Pick<Config, 'http'>`), which keeps tests honest
 * about what a piece of code depends on.
 */
const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL')
    .optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  ORGSYNC_OPERATOR_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  PUBLIC_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(100 * 1024),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  // A client gets this long for its request headers, and for the whole request (headers and
  // body); then 408 and the connection closes. Idle keep-alive connections close after the last.
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  SCIM_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
  SCIM_RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(100),
  SCIM_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(1_000_000).default(200),
  SCIM_TOKEN_GRACE_SECONDS: z.coerce.number().int().min(0).max(30 * 86400).default(86400),
  BILLING_TIERS: z.string().optional(),
  BILLING_CURRENCY: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code like USD').default('USD'),
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
  MAIL_FROM: z.string().min(3).default('orgsync <billing@orgsync.invalid>'),
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  WEBHOOK_BASE_DELAY_MS: z.coerce.number().int().min(1).max(3_600_000).default(2000),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
  OUTBOUND_ALLOW_HOSTS: z.string().max(10_000).optional(),
  OUTBOUND_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  OUTBOUND_MAX_RESPONSE_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  JOBS_ENABLED: z.enum(['true', 'false']).default('true'),
  // Every job every few seconds (tests and demos); JOBS_SCHEDULE overrides single jobs' cron expressions.
  JOBS_FAST: z.enum(['true', 'false']).default('false'),
  JOBS_SCHEDULE: z.string().max(2000).optional(),
  // Encrypts SSO client secrets at rest and signs session and console cookies (≥ 32 characters;
  // a key is derived from it with HKDF). Unset: see resolveSecretKey in src/sso/secret-key.ts.
  SECRET_KEY: z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)').optional(),
  SSO_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(600).default(60),
  SAML_ALLOW_SHA1: z.enum(['true', 'false']).default('false'),
  // Optional SP signing key pair (PEM): AuthnRequests are signed and the metadata says so.
  SAML_SP_PRIVATE_KEY: z.string().includes('PRIVATE KEY', { message: 'must be a PEM private key' }).optional(),
  SAML_SP_CERTIFICATE: z.string().includes('CERTIFICATE', { message: 'must be a PEM certificate' }).optional(),
  SSO_VERIFY_TIMEOUT_MS: z.coerce.number().int().min(10).max(60_000).default(2000),
  // Worker threads that verify SAML responses: "auto" = the number of CPUs; 0 = on the main thread.
  SAML_VERIFY_THREADS: z.union([z.literal('auto'), z.coerce.number().int().min(0).max(32)]).default('auto'),
  SSO_REQUEST_TTL_SECONDS: z.coerce.number().int().min(30).max(3600).default(600),
  // POST /login answers per client address (a token bucket): slows down guessing who is in a rollout.
  LOGIN_RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(5),
  LOGIN_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(1_000_000).default(30),
  SSO_REFUSAL_AUDITS_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(6),
  SSO_REFUSAL_AUDIT_BURST: z.coerce.number().int().min(1).max(1_000_000).default(20),
  CONSOLE_SESSION_MINUTES: z.coerce.number().int().min(1).max(7 * 1440).default(480),
  // Failed console sign-ins per client address (a token bucket): beyond it 429 with Retry-After.
  CONSOLE_SIGN_IN_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(5),
  CONSOLE_SIGN_IN_FAILURES_BURST: z.coerce.number().int().min(1).max(100_000).default(10),
}).refine((e) => Boolean(e.SAML_SP_PRIVATE_KEY) === Boolean(e.SAML_SP_CERTIFICATE), {
  path: ['SAML_SP_CERTIFICATE'], message: 'SAML_SP_PRIVATE_KEY and SAML_SP_CERTIFICATE go together',
}).refine((e) => !(e.HTTP_REQUEST_TIMEOUT_MS >= 100) || e.HTTP_HEADERS_TIMEOUT_MS <= e.HTTP_REQUEST_TIMEOUT_MS, {
  // Node refuses a headers timeout longer than the request timeout (the headers are part of the
  // request). Zod runs refinements on a partly invalid object too: a bad request timeout is
  // reported once, by its own check.
  path: ['HTTP_HEADERS_TIMEOUT_MS'], message: 'must not be longer than HTTP_REQUEST_TIMEOUT_MS',
});

export const JOB_NAMES = ['outbox-delivery', 'reconciliation', 'trial-ends', 'retention-purge', 'bill-notices'] as const;
export type JobName = (typeof JOB_NAMES)[number];
const scheduleSchema = z.partialRecord(z.enum(JOB_NAMES), z.string().min(9).max(100).refine((e) => cron.validate(e), 'must be a node-cron expression'));

/**
 * Progressive price per billable user per month, in the currency's minor unit (cents): each
 * band prices the users that fall in it (SPEC §5). `upTo: null` is the last, open band.
 */
export type PriceTier = { upTo: number | null; unitPrice: number };
export const DEFAULT_TIERS: PriceTier[] = [
  { upTo: 100, unitPrice: 400 },
  { upTo: 1000, unitPrice: 300 },
  { upTo: 5000, unitPrice: 200 },
  { upTo: null, unitPrice: 150 },
];
const tiersSchema = z.array(z.strictObject({ upTo: z.number().int().positive().nullable(), unitPrice: z.number().int().min(0) })).min(1)
  .refine((t) => t.at(-1)!.upTo === null, 'the last tier must have upTo: null')
  .refine((t) => t.slice(0, -1).every((x, i) => x.upTo !== null && (i === 0 || x.upTo > t[i - 1]!.upTo!)), 'upTo must increase');

export type Config = Readonly<{
  http: Readonly<{
    port: number; host: string; publicUrl: string; bodyLimitBytes: number; shutdownTimeoutMs: number;
    headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number;
  }>;
  database: Readonly<
    | { kind: 'pglite'; dataDir: string }
    | { kind: 'postgres'; url: string; poolSize: number }
  >;
  operatorToken: string | undefined;
  logLevel: string;
  scim: Readonly<{ bodyLimitBytes: number; ratePerSecond: number; rateBurst: number; tokenGraceSeconds: number }>;
  billing: Readonly<{
    tiers: readonly PriceTier[]; currency: string;
    webhook: Readonly<{ maxAttempts: number; baseDelayMs: number; timeoutMs: number }>;
  }>;
  mail: Readonly<{ smtpUrl: string | undefined; from: string }>;
  /** The outbound-request guard (src/net/outbound.ts): destinations allowed despite being private, caps. */
  outbound: Readonly<{ allowHosts: readonly string[]; timeoutMs: number; maxResponseBytes: number }>;
  /** fast: every job every few seconds; schedules: cron expressions that replace a job's default. */
  jobs: Readonly<{ enabled: boolean; fast: boolean; schedules: Readonly<Partial<Record<JobName, string>>> }>;
  sso: Readonly<{
    /** SECRET_KEY as given; undefined → src/sso/secret-key.ts decides (file in DATA_DIR, or per process). */
    secretKey: string | undefined;
    clockSkewSeconds: number;
    allowSha1: boolean;
    spSigning: Readonly<{ privateKey: string; certificate: string }> | null;
    verifyTimeoutMs: number;
    /** SAML verification worker threads (0: main thread). */
    verifyThreads: number;
    requestTtlSeconds: number;
    /** Cookies get `Secure` when PUBLIC_URL is https. */
    secureCookies: boolean;
    consoleSessionMinutes: number;
    consoleSignInFailuresPerMinute: number;
    consoleSignInFailuresBurst: number;
    loginRatePerSecond: number;
    loginRateBurst: number;
    /** Refusal audit rows per connection and client address (token bucket). */
    refusalAuditsPerMinute: number;
    refusalAuditBurst: number;
  }>;
}>;

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; fails naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined>): Config {
  // Empty strings mean "unset" (a common result of `FOO= npm start` and of compose files).
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  let tiers: PriceTier[] = DEFAULT_TIERS;
  if (e.BILLING_TIERS) {
    let raw: unknown;
    try {
      raw = JSON.parse(e.BILLING_TIERS);
    } catch {
      throw new ConfigError(['BILLING_TIERS: must be JSON, e.g. [{"upTo":100,"unitPrice":400},{"upTo":null,"unitPrice":300}]']);
    }
    const t = tiersSchema.safeParse(raw);
    if (!t.success) throw new ConfigError(t.error.issues.map((i) => `BILLING_TIERS${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`));
    tiers = t.data;
  }
  let schedules: Partial<Record<JobName, string>> = {};
  if (e.JOBS_SCHEDULE) {
    let raw: unknown;
    try {
      raw = JSON.parse(e.JOBS_SCHEDULE);
    } catch {
      throw new ConfigError(['JOBS_SCHEDULE: must be JSON, e.g. {"reconciliation":"0 30 2 * * *"}']);
    }
    const s = scheduleSchema.safeParse(raw);
    if (!s.success) throw new ConfigError(s.error.issues.map((i) => `JOBS_SCHEDULE${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`));
    schedules = s.data;
  }
  const config: Config = {
    http: {
      port: e.PORT,
      host: e.HOST,
      publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    },
    database: e.DATABASE_URL
      ? { kind: 'postgres', url: e.DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE }
      : { kind: 'pglite', dataDir: e.DATA_DIR },
    operatorToken: e.ORGSYNC_OPERATOR_TOKEN,
    logLevel: e.LOG_LEVEL,
    scim: {
      bodyLimitBytes: e.SCIM_BODY_LIMIT_BYTES,
      ratePerSecond: e.SCIM_RATE_LIMIT_PER_SECOND,
      rateBurst: e.SCIM_RATE_LIMIT_BURST,
      tokenGraceSeconds: e.SCIM_TOKEN_GRACE_SECONDS,
    },
    billing: {
      tiers, currency: e.BILLING_CURRENCY,
      webhook: { maxAttempts: e.WEBHOOK_MAX_ATTEMPTS, baseDelayMs: e.WEBHOOK_BASE_DELAY_MS, timeoutMs: e.WEBHOOK_TIMEOUT_MS },
    },
    mail: { smtpUrl: e.SMTP_URL, from: e.MAIL_FROM },
    outbound: { allowHosts: allowHosts(e.OUTBOUND_ALLOW_HOSTS), timeoutMs: e.OUTBOUND_TIMEOUT_MS, maxResponseBytes: e.OUTBOUND_MAX_RESPONSE_BYTES },
    jobs: { enabled: e.JOBS_ENABLED === 'true', fast: e.JOBS_FAST === 'true', schedules },
    sso: {
      secretKey: e.SECRET_KEY,
      clockSkewSeconds: e.SSO_CLOCK_SKEW_SECONDS,
      allowSha1: e.SAML_ALLOW_SHA1 === 'true',
      // PEM in an environment variable often arrives with literal \n.
      spSigning: e.SAML_SP_PRIVATE_KEY && e.SAML_SP_CERTIFICATE
        ? { privateKey: e.SAML_SP_PRIVATE_KEY.replace(/\\n/g, '\n'), certificate: e.SAML_SP_CERTIFICATE.replace(/\\n/g, '\n') }
        : null,
      verifyTimeoutMs: e.SSO_VERIFY_TIMEOUT_MS,
      verifyThreads: e.SAML_VERIFY_THREADS === 'auto' ? Math.max(1, availableParallelism()) : e.SAML_VERIFY_THREADS,
      requestTtlSeconds: e.SSO_REQUEST_TTL_SECONDS,
      secureCookies: (e.PUBLIC_URL ?? '').startsWith('https://'),
      consoleSessionMinutes: e.CONSOLE_SESSION_MINUTES,
      consoleSignInFailuresPerMinute: e.CONSOLE_SIGN_IN_FAILURES_PER_MINUTE,
      consoleSignInFailuresBurst: e.CONSOLE_SIGN_IN_FAILURES_BURST,
      loginRatePerSecond: e.LOGIN_RATE_LIMIT_PER_SECOND,
      loginRateBurst: e.LOGIN_RATE_LIMIT_BURST,
      refusalAuditsPerMinute: e.SSO_REFUSAL_AUDITS_PER_MINUTE,
      refusalAuditBurst: e.SSO_REFUSAL_AUDIT_BURST,
    },
  };
  return deepFreeze(config);
}

/** OUTBOUND_ALLOW_HOSTS: comma-separated host names, IP addresses and CIDR ranges; each checked here so a typo fails at start. */
function allowHosts(raw: string | undefined): string[] {
  const entries = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = entries.filter((e) => {
    const bare = e.replace(/^\[(.*)\]$/, '$1');
    if (bare.includes('/')) return !ipaddr.isValidCIDR(bare);
    return !ipaddr.isValid(bare) && !/^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i.test(bare);
  });
  if (bad.length) throw new ConfigError([`OUTBOUND_ALLOW_HOSTS: not a host name, IP address or CIDR range: ${bad.join(', ')}`]);
  return entries;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
