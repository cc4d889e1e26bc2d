/**
 * Configuration, parsed once at boot from the environment and validated against a schema.
 * Nothing else in the codebase reads `process.env`: the server gets a `ServerConfig`, the CLI a
 * `CliConfig`. A bad value fails fast with a message that names the variable.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import path from 'node:path';

/**
 * PANOPTICON_COMMIT_BATCH's default and ceiling: the one bound of every group commit (trace ingest,
 * guard check records, the SQLite commit worker's merge), in rows or records.
 */
export const DEFAULT_COMMIT_BATCH = 2000;
export const MAX_COMMIT_BATCH = 2000;

/**
 * scrypt's cost N for password hashes: OWASP's recommendation (with r=8, p=1) is every server's
 * default; an operator may set it from 2^14 to 2^20 (PANOPTICON_PASSWORD_SCRYPT_N).
 */
export const OWASP_SCRYPT_N = 2 ** 17;
const MIN_PASSWORD_SCRYPT_N = 2 ** 14;
const MAX_PASSWORD_SCRYPT_N = 2 ** 20;

const ServerEnv = Type.Object({
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  /** A file path selects SQLite (the embedded default); a postgres:// URL selects PostgreSQL. */
  PANOPTICON_DB: Type.String({ default: './data/panopticon.db', minLength: 1 }),
  PANOPTICON_LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** `open`: anyone may sign up; `closed`: only the first account (the install's owner) may. */
  PANOPTICON_SIGNUP: Type.Union([Type.Literal('open'), Type.Literal('closed')], { default: 'open' }),
  /** Requests per second allowed for one PAK (a token bucket refilled every second). */
  PANOPTICON_PAK_RATE_LIMIT: Type.Integer({ default: 1000, minimum: 1 }),
  /**
   * Largest number of traces (or guard check records) written in one group commit; a request's
   * traces are never split, so one larger batch request commits alone.
   */
  PANOPTICON_COMMIT_BATCH: Type.Integer({ default: DEFAULT_COMMIT_BATCH, minimum: 1, maximum: MAX_COMMIT_BATCH }),
  /**
   * How long a write waits for a database lock held by someone else (another SQLite connection, a
   * PostgreSQL lock) before giving up; the request is then answered 503 store_unavailable and
   * nothing of it is stored. On SQLite the wait blocks the whole process, so keep it short.
   */
  PANOPTICON_LOCK_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 1, maximum: 600_000 }),
  /** Size of the PostgreSQL connection pool of this node. */
  PANOPTICON_PG_POOL: Type.Integer({ default: 10, minimum: 2, maximum: 200 }),
  /** Session cookie lifetime in hours. */
  PANOPTICON_SESSION_HOURS: Type.Integer({ default: 24 * 14, minimum: 1 }),
  /** Set the session cookie's Secure flag (on when served over HTTPS behind a proxy). */
  PANOPTICON_SECURE_COOKIES: Type.Boolean({ default: false }),
  /** Webhook deliveries may reach loopback, private and link-local addresses (refused by default). */
  PANOPTICON_WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false }),
  /**
   * Most approval requests one application may have pending at once. A check that would open one
   * more is answered `deny` with reason `too_many_pending_approvals` (and `retry_after_seconds`),
   * opening nothing; an identical pending request is reused instead of counting twice.
   */
  PANOPTICON_MAX_PENDING_APPROVALS: Type.Integer({ default: 100, minimum: 1, maximum: 100_000 }),
  /**
   * Most undelivered webhook deliveries one endpoint keeps; past it, its oldest are marked
   * `dropped` (visible in its deliveries and their counts).
   */
  PANOPTICON_WEBHOOK_OUTBOX_LIMIT: Type.Integer({ default: 1000, minimum: 1, maximum: 1_000_000 }),
  /**
   * 32-byte key (64 hex characters or base64) that encrypts stored secrets (HMAC signing secrets,
   * webhook secrets) and from which the audit chain's keys are derived (src/crypto/audit-key.ts). Unset: a
   * key file is generated (0600) in the data directory on first start. Every node sharing one
   * PostgreSQL database needs the same key.
   */
  PANOPTICON_SECRET_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Where the generated key file lives. Default: the SQLite file's directory, or ./data. */
  PANOPTICON_DATA_DIR: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * scrypt's cost N for new password hashes: a power of two from 2^14 to 2^20, default OWASP's 2^17
   * (about 0.6 s of CPU and 128 MiB per hash on the 2-core CI machine). Each hash records its own
   * cost, so changing it never locks anyone out. Test suites that start real servers lower it.
   */
  PANOPTICON_PASSWORD_SCRYPT_N: Type.Integer({ default: OWASP_SCRYPT_N, minimum: MIN_PASSWORD_SCRYPT_N, maximum: MAX_PASSWORD_SCRYPT_N }),
});

export type ServerEnv = Static<typeof ServerEnv>;

export interface ServerConfig {
  host: string;
  port: number;
  database: StoreLocation;
  logLevel: ServerEnv['PANOPTICON_LOG_LEVEL'];
  signup: 'open' | 'closed';
  pakRateLimitPerSecond: number;
  commitBatchSize: number;
  lockTimeoutMs: number;
  pgPoolSize: number;
  sessionTtlMs: number;
  secureCookies: boolean;
  /** PANOPTICON_WEBHOOK_ALLOW_PRIVATE: webhooks may reach non-public addresses. */
  webhookAllowPrivate: boolean;
  /** PANOPTICON_MAX_PENDING_APPROVALS: pending approval requests allowed per application. */
  maxPendingApprovals: number;
  /** PANOPTICON_WEBHOOK_OUTBOX_LIMIT: undelivered deliveries kept per webhook endpoint. */
  webhookOutboxLimit: number;
  /** Raw server key from PANOPTICON_SECRET_KEY, already decoded; undefined → key file in dataDir. */
  secretKey: Buffer | undefined;
  dataDir: string;
  /** PANOPTICON_PASSWORD_SCRYPT_N: scrypt's cost for new password hashes. */
  passwordScryptN: number;
}

export type StoreLocation =
  | { engine: 'sqlite'; file: string }
  | { engine: 'postgres'; url: string; schema: string | undefined };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `postgres://…?schema=x` picks a schema (tests use one per run); anything else is a SQLite file. */
export function parseStoreLocation(value: string): StoreLocation {
  if (/^postgres(ql)?:\/\//i.test(value)) {
    const url = new URL(value);
    const schema = url.searchParams.get('schema') ?? undefined;
    url.searchParams.delete('schema');
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new ConfigError(`PANOPTICON_DB: schema "${schema}" must match [a-z_][a-z0-9_]*`);
    }
    return { engine: 'postgres', url: url.toString(), schema };
  }
  return { engine: 'sqlite', file: value === ':memory:' ? value : path.resolve(value) };
}

function parseEnv<T extends import('@sinclair/typebox').TObject>(
  schema: T,
  env: NodeJS.ProcessEnv,
): Static<T> {
  const picked: Record<string, unknown> = {};
  // TypeBox's conversion reads integers leniently ("1e3" as 1, "16384.5" as 16384, "0x10" as 16):
  // only plain decimal digits become a number, anything else stays text and fails validation.
  const notDecimal = new Map<string, string>();
  for (const [key, property] of Object.entries(schema.properties)) {
    const raw = env[key];
    if (raw === undefined || raw === '') continue;
    picked[key] = raw;
    if ((property as { type?: unknown }).type === 'integer' && !/^\s*-?\d+\s*$/.test(raw)) notDecimal.set(key, raw);
  }
  // Default and Convert change `picked` in place.
  const value = Value.Convert(schema, Value.Default(schema, picked)) as Record<string, unknown>;
  for (const [key, raw] of notDecimal) value[key] = raw;
  const errors = [...Value.Errors(schema, value)];
  if (errors.length > 0) {
    const lines = errors.map((e) => `  ${e.path.slice(1) || '(root)'}: ${e.message} (got ${JSON.stringify(e.value)})`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return value as Static<T>;
}

/** 64 hex characters or base64 of exactly 32 bytes. */
export function decodeSecretKey(text: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new ConfigError('PANOPTICON_SECRET_KEY: must be 32 bytes, as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)');
  return key;
}

export function loadServerConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const e = parseEnv(ServerEnv, env);
  const database = parseStoreLocation(e.PANOPTICON_DB);
  const scryptN = e.PANOPTICON_PASSWORD_SCRYPT_N;
  if ((scryptN & (scryptN - 1)) !== 0) throw new ConfigError(`PANOPTICON_PASSWORD_SCRYPT_N: must be a power of two (${MIN_PASSWORD_SCRYPT_N} to ${MAX_PASSWORD_SCRYPT_N}; default ${OWASP_SCRYPT_N})`);
  return {
    host: e.HOST,
    port: e.PORT,
    database,
    logLevel: e.PANOPTICON_LOG_LEVEL,
    signup: e.PANOPTICON_SIGNUP,
    pakRateLimitPerSecond: e.PANOPTICON_PAK_RATE_LIMIT,
    commitBatchSize: e.PANOPTICON_COMMIT_BATCH,
    lockTimeoutMs: e.PANOPTICON_LOCK_TIMEOUT_MS,
    pgPoolSize: e.PANOPTICON_PG_POOL,
    sessionTtlMs: e.PANOPTICON_SESSION_HOURS * 3600_000,
    secureCookies: e.PANOPTICON_SECURE_COOKIES,
    webhookAllowPrivate: e.PANOPTICON_WEBHOOK_ALLOW_PRIVATE,
    maxPendingApprovals: e.PANOPTICON_MAX_PENDING_APPROVALS,
    webhookOutboxLimit: e.PANOPTICON_WEBHOOK_OUTBOX_LIMIT,
    secretKey: e.PANOPTICON_SECRET_KEY === undefined ? undefined : decodeSecretKey(e.PANOPTICON_SECRET_KEY),
    dataDir: path.resolve(e.PANOPTICON_DATA_DIR ?? (database.engine === 'sqlite' && database.file !== ':memory:' ? path.dirname(database.file) : './data')),
    passwordScryptN: scryptN,
  };
}
