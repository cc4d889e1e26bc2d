/**
 * Test harness: real servers on real databases. Every server gets a store of its own (a fresh
 * SQLite file, or a fresh PostgreSQL schema in the `test` database, dropped afterwards), so test
 * files and CI runs never collide.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { AuditKey } from '../../src/crypto/audit-key.js';
import { loadServerConfig, type ServerConfig, type StoreLocation } from '../../src/config.js';
import { loadServerKey } from '../../src/crypto/secret-box.js';
import { buildServer } from '../../src/http/server.js';
import { type BuildOptions, type Services } from '../../src/http/services.js';
import { openStore, type OpenStoreOptions } from '../../src/store/index.js';
import type { Store } from '../../src/store/types/store.js';
import { type Engine, freshLocation, LOGI_BIN, TEST_SECRET_KEY } from './locations.js';

export * from './locations.js';

/**
 * Test servers hash passwords at a small scrypt cost instead of OWASP's 2^17 (the default, about
 * 0.6 s of CPU and 128 MiB per hash here): in this process N=2^10 (3 ms) for the two hashes of
 * every test tenant, about 650 a run; `logi serve` children at 2^14, the least
 * PANOPTICON_PASSWORD_SCRYPT_N takes. At OWASP's cost they were an eighth of the suite's CPU. The
 * accounts suite checks a server as shipped.
 */
export const TEST_SCRYPT_N = 2 ** 10;
const SPAWNED_SCRYPT_N = 2 ** 14;

export function testConfig(location: StoreLocation, overrides: Partial<ServerConfig> = {}): ServerConfig {
  // Test receivers (webhooks) listen on loopback, which a default install refuses to deliver to.
  return { ...loadServerConfig({}), host: '127.0.0.1', port: 0, database: location, logLevel: 'silent', secretKey: TEST_SECRET_KEY, webhookAllowPrivate: true, passwordScryptN: TEST_SCRYPT_N, ...overrides };
}

export interface RunningServer {
  url: string;
  store: Store;
  services: Services;
  engine: Engine;
  location: StoreLocation;
  close(): Promise<void>;
}

/**
 * Starts the real server in this process on an ephemeral port, on a fresh store, or on `shared`
 * (a second node of the same database; the caller then owns the clean-up). `options` reach
 * buildServer (e.g. short webhook backoff).
 */
export async function startServer(
  engine: Engine,
  overrides: Partial<ServerConfig> = {},
  shared?: StoreLocation,
  options: BuildOptions = {},
  storeOptions: Pick<OpenStoreOptions, 'listener'> = {},
): Promise<RunningServer> {
  const fresh = shared === undefined ? freshLocation(engine) : { location: shared, cleanup: async () => {} };
  const config = testConfig(fresh.location, overrides);
  // As `logi serve` does: the store chains audit entries under the key derived from the server key.
  const auditKey = AuditKey.fromServerKey(loadServerKey(config.secretKey, config.dataDir));
  const store = await openStore(fresh.location, { auditKey, pgPoolSize: config.pgPoolSize, lockTimeoutMs: config.lockTimeoutMs, webhookOutboxLimit: config.webhookOutboxLimit, commitBatch: config.commitBatchSize, ...storeOptions });
  const { app, services } = await buildServer(config, store, options);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    store,
    services,
    engine,
    location: fresh.location,
    async close() {
      await app.close();
      await store.close();
      await fresh.cleanup();
    },
  };
}

export interface TwoNodes {
  a: RunningServer;
  b: RunningServer;
  /** Created through node A. */
  t: Tenant;
  close(): Promise<void>;
}

/**
 * Two server nodes on one fresh PostgreSQL schema (A creates it, B joins it) and a tenant, for
 * the cross-node tests: a signal sent by one node must change what the other does.
 */
export async function twoNodesOnePostgres(options: BuildOptions = {}): Promise<TwoNodes> {
  const a = await startServer('postgres', {}, undefined, options);
  const b = await startServer('postgres', {}, a.location, options);
  const t = await createTenant(a.url);
  return {
    a,
    b,
    t,
    // B first: A's close drops the schema B is still connected to.
    async close() {
      await b.close();
      await a.close();
    },
  };
}

export interface SpawnedServer {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code once the process ended. */
  exited: Promise<number | null>;
}

/** Starts `logi serve` as a child process (for crash, signal and CLI tests). */
export async function spawnServer(env: Record<string, string>): Promise<SpawnedServer> {
  const child = spawn(process.execPath, [LOGI_BIN, 'serve'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', PORT: '0', PANOPTICON_LOG_LEVEL: 'warn', PANOPTICON_PASSWORD_SCRYPT_N: String(SPAWNED_SCRYPT_N), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20_000);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening:\n${output}`));
    });
  });
  return { url, child, output: () => output, exited };
}

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** A small fetch wrapper: JSON in, JSON (or text) out, never throws on HTTP status. */
export async function http<T = any>(
  url: string,
  method: string,
  pathAndQuery: string,
  options: { body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  let payload: string | undefined;
  if (options.raw !== undefined) payload = options.raw;
  else if (options.body !== undefined) {
    payload = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const res = await fetch(url + pathAndQuery, { method, headers, body: payload });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: body as T, text };
}

export interface Tenant {
  email: string;
  password: string;
  token: string;
  clientId: string;
  pak: string;
}

let tenantCounter = 0;

/** Account → operator token → app → enabled → PAK, over the HTTP API. */
export async function createTenant(url: string, options: { enable?: boolean; issuePak?: boolean } = {}): Promise<Tenant> {
  const email = `op${process.pid}-${++tenantCounter}-${crypto.randomBytes(3).toString('hex')}@example.com`;
  const password = 'correct horse battery staple';
  const signup = await http(url, 'POST', '/api/auth/signup', { body: { email, password } });
  if (signup.status !== 201) throw new Error(`signup failed: ${signup.text}`);
  const token = (await http(url, 'POST', '/api/auth/token', { body: { email, password } })).body.token as string;
  const app = await http(url, 'POST', '/api/apps', { token, body: { name: 'test app' } });
  const clientId = app.body.client_id as string;
  if (options.enable !== false) await http(url, 'PATCH', `/api/apps/${clientId}`, { token, body: { panopticon_enabled: true } });
  let pak = '';
  if (options.issuePak !== false) pak = (await http(url, 'POST', `/api/apps/${clientId}/paks`, { token })).body.pak as string;
  return { email, password, token, clientId, pak };
}

/** A valid trace body for the app (the product page's step-2 example), with a fresh event_id unless one is given. */
export function traceBody(clientId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_id: crypto.randomUUID(),
    client_id: clientId,
    tool: 'hello',
    scope_used: 'agent:read',
    status: 'ok',
    started_at: '2026-05-09T10:11:12Z',
    duration_ms: 12,
    ...overrides,
  };
}

export function postTrace(url: string, pak: string, body: unknown, headers: Record<string, string> = {}) {
  return http(url, 'POST', '/panopticon/trace', { body, token: pak, headers });
}

export interface RawSql {
  /** `?` placeholders on both engines. */
  query(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/**
 * A second, plain connection to a test store: for tests that play the attacker with direct
 * database access (tampering with the audit log) or inspect columns the API never shows.
 */
export async function rawSql(location: StoreLocation): Promise<RawSql> {
  if (location.engine === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(location.file);
    db.pragma('busy_timeout = 5000');
    return {
      async query(sql, params = []) {
        const stmt = db.prepare(sql);
        return (stmt.reader ? stmt.all(...params) : (stmt.run(...params), [])) as Array<Record<string, unknown>>;
      },
      async close() {
        db.close();
      },
    };
  }
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: location.url, options: `-c search_path=${location.schema ?? 'public'}` });
  await client.connect();
  return {
    async query(sql, params = []) {
      let i = 0;
      return (await client.query(sql.replace(/\?/g, () => `$${++i}`), params)).rows as Array<Record<string, unknown>>;
    },
    async close() {
      await client.end();
    },
  };
}

/**
 * `count` calls of `task`, at most `concurrency` in flight: a flood that stays a flood of requests,
 * not of TCP connects (a thousand at once time out on a loaded 2-core machine before the server
 * sees them). Results in call order.
 */
export async function inParallel<T>(count: number, task: (i: number) => Promise<T>, concurrency = 64): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) results[i] = await task(i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}
