/**
 * The storage seam. Domain code talks to this interface only; `sqlite.ts` and `postgres.ts`
 * implement it and `store.contract.test.ts` runs one suite against both.
 *
 * Times are integers: milliseconds since the epoch for bookkeeping columns, microseconds for a
 * trace's `started_at` (RFC 3339 allows sub-millisecond precision and we keep it).
 */

import type { ApprovalStore } from './approvals.js';
import type { AuditInput, AuditStore, GuardStore } from './guard.js';
import type { WebhookStore } from './webhooks.js';
import type { SecretStore } from './secrets.js';
import type { ToolStore } from './tools.js';

export interface Account {
  id: string;
  email: string;
  passwordHash: string;
  isOwner: boolean;
  createdAt: number;
}

export interface Session {
  accountId: string;
  expiresAt: number;
}

export interface OperatorToken {
  id: string;
  accountId: string;
  prefix: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

export interface App {
  clientId: string;
  accountId: string;
  name: string;
  panopticonEnabled: boolean;
  hmacEnabled: boolean;
  /** Keep checked tool arguments verbatim (off: only their keyed hash is stored). */
  keepArguments: boolean;
  createdAt: number;
}

export interface Pak {
  id: string;
  clientId: string;
  prefix: string;
  createdAt: number;
  lastUsedAt: number | null;
  /** Set when the key was rotated out: valid until then. */
  expiresAt: number | null;
  revokedAt: number | null;
}

/** What the trace API needs to authenticate a PAK: loaded by hash, cached per node. */
export interface PakAuthRecord {
  keyId: string;
  keyHash: string;
  clientId: string;
  panopticonEnabled: boolean;
  /** The app requires every request to be signed (X-Panopticon-Signature). */
  hmacEnabled: boolean;
  expiresAt: number | null;
  revokedAt: number | null;
}

export type TraceStatus = 'ok' | 'error' | 'denied' | 'timeout';

export interface TraceRow {
  clientId: string;
  eventId: string;
  tool: string;
  scopeUsed: string;
  status: TraceStatus;
  startedAtUs: number;
  /** UTC date of started_at, YYYY-MM-DD: the usage bucket. */
  day: string;
  durationMs: number;
  userSub: string | null;
  errorMessage: string | null;
  sessionId: string | null;
  /** The guard check that let this call run (`check_id` of POST /panopticon/guard/check), if any. */
  checkId: string | null;
  /** JSON text of the attributes object, or null. */
  attributes: string | null;
  keyId: string;
  receivedAt: number;
}

export interface StoredTrace extends TraceRow {
  seq: number;
}

export interface TraceQuery {
  clientId: string;
  limit: number;
  tool?: string | undefined;
  status?: TraceStatus | undefined;
  userSub?: string | undefined;
  sinceUs?: number | undefined;
  untilUs?: number | undefined;
  /** Keyset cursor: return traces strictly older than this (started_at, seq) pair. */
  before?: { startedAtUs: number; seq: number } | undefined;
}

export interface UsageRow {
  day: string;
  traces: number;
  errors: number;
  hitlRequests: number;
  killSwitch: number;
}

/**
 * Cross-node signals; on PostgreSQL they ride LISTEN/NOTIFY, on SQLite they stay in-process.
 * `clientId: '*'` means "anything may have changed" (sent after a lost listener connection).
 */
export type StoreSignal =
  /**
   * Delivered only within a node, never published: this node stopped hearing (or hears again) the
   * other nodes' signals. Each is followed by every `'*'` signal.
   */
  | { kind: 'signals_lost' }
  | { kind: 'signals_restored' }
  | { kind: 'keys_changed'; clientId: string }
  | { kind: 'guard_changed'; clientId: string }
  | { kind: 'approval_decided'; clientId: string; approvalId: string }
  /**
   * A guard check opened an approval request (after its commit). Only the node that ran the check
   * knows; this carries it to the inboxes open on the other nodes.
   */
  | { kind: 'approval_requested'; clientId: string; approvalId: string }
  /**
   * A group commit stored new traces for these apps: live views re-read them from the store. One
   * signal per commit (not per trace) keeps NOTIFY traffic proportional to commits.
   */
  | { kind: 'traces_committed'; clientIds: string[] };

export interface NewPak {
  id: string;
  clientId: string;
  keyHash: string;
  prefix: string;
  now: number;
}

export interface NewAccount {
  id: string;
  email: string;
  passwordHash: string;
  now: number;
  onlyIfFirst?: boolean;
}

export type WriteState = { ok: true } | { ok: false; reason: string; since: number };

export interface Store {
  readonly engine: 'sqlite' | 'postgres';
  /**
   * Trace transactions actually committed, where the engine merges several insertTraces calls into
   * one (SQLite's commit worker); absent where each call is its own commit.
   */
  readonly traceCommitStats?: { readonly commits: number; readonly rows: number };
  readonly audit: AuditStore;
  readonly guard: GuardStore;
  readonly approvals: ApprovalStore;
  readonly webhooks: WebhookStore;
  readonly secrets: SecretStore;
  readonly tools: ToolStore;

  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the store can be read. */
  ping(): Promise<void>;
  /**
   * Whether the store can be written: after a write failed because of the store (disk full, I/O
   * error, lock timeout, connection lost), one probe write (no lock wait) decides; otherwise ok.
   */
  writable(): Promise<WriteState>;

  // Accounts, sessions, operator tokens
  /**
   * Creates the account; the first one on an install becomes its owner. With `onlyIfFirst`, only
   * while there is no account yet, decided in the same transaction, so concurrent sign-ups on a
   * closed install cannot both become "the first".
   */
  createAccount(input: NewAccount): Promise<{ ok: true; account: Account } | { ok: false; reason: 'email_taken' | 'signup_closed' }>;
  countAccounts(): Promise<number>;
  findAccountByEmail(email: string): Promise<Account | null>;
  findAccountById(id: string): Promise<Account | null>;
  createSession(input: { tokenHash: string; accountId: string; now: number; expiresAt: number }): Promise<void>;
  findSession(tokenHash: string, now: number): Promise<Session | null>;
  deleteSession(tokenHash: string): Promise<void>;
  createOperatorToken(input: { id: string; tokenHash: string; accountId: string; prefix: string; name: string; now: number }): Promise<OperatorToken>;
  findOperatorToken(tokenHash: string): Promise<OperatorToken | null>;
  revokeOperatorToken(tokenHash: string, now: number): Promise<boolean>;

  // Apps
  /** Creates the app with its first audit entry (`audit`), in one transaction. */
  createApp(input: { clientId: string; accountId: string; name: string; now: number }, audit: AuditInput): Promise<App>;
  listApps(accountId: string): Promise<App[]>;
  /** Scoped to the account: another account's app is reported as absent. */
  findApp(accountId: string, clientId: string): Promise<App | null>;
  /**
   * Applies the patch and appends `audit(before, after)`'s entries in the same transaction; null
   * (nothing written) when the account has no such app.
   */
  updateApp(
    accountId: string,
    clientId: string,
    patch: { name?: string | undefined; panopticonEnabled?: boolean | undefined },
    audit: (before: App, after: App) => AuditInput[],
  ): Promise<App | null>;

  // PAKs
  /** Null when the app already has a primary (non-expiring, unrevoked) key. */
  insertPak(input: NewPak, audit?: AuditInput): Promise<Pak | null>;
  listPaks(clientId: string): Promise<Pak[]>;
  /** Keys that are neither revoked nor expired at `now`. */
  activePaks(clientId: string, now: number): Promise<Pak[]>;
  /**
   * In one transaction: every key of the app still valid at `now` expires at `expiresAt` (revoked
   * when that is not after `now`), and the new key becomes the primary one.
   */
  rotatePak(input: NewPak & { expiresAt: number }, audit?: AuditInput): Promise<{ pak: Pak; previous: Pak[] }>;
  /** The audit entry is written only when something was revoked. */
  revokePaks(clientId: string, now: number, keyId?: string, audit?: (revoked: Pak[]) => AuditInput): Promise<Pak[]>;
  findPakForAuth(keyHash: string): Promise<PakAuthRecord | null>;
  touchPaks(lastUsed: ReadonlyMap<string, number>): Promise<void>;

  // Traces
  /**
   * One durable group commit: inserts the rows that are new (per app and event_id) and adds them to
   * the daily usage in the same transaction. Returns, per input row, whether it was new. When one
   * event_id appears several times, only its first occurrence can be new.
   */
  insertTraces(rows: readonly TraceRow[]): Promise<boolean[]>;
  /** The naive design the benchmark compares against: one durable commit for one row. */
  insertTraceUnbatched(row: TraceRow): Promise<boolean>;
  listTraces(query: TraceQuery): Promise<StoredTrace[]>;
  countTraces(clientId: string): Promise<number>;
  /** Traces of the app with seq > afterSeq, ascending by seq: the live stream's feed. */
  tracesAfter(clientId: string, afterSeq: number, limit: number): Promise<StoredTrace[]>;
  /** The app's highest trace seq, 0 when it has none: where a live stream without history starts. */
  maxTraceSeq(clientId: string): Promise<number>;
  usage(clientId: string, sinceDay: string, untilDay: string): Promise<UsageRow[]>;

  // Signals
  publish(signal: StoreSignal): Promise<void>;
  /**
   * Whether this node hears every other node's signals now. While not, caches must not serve what
   * a missed signal would have changed: they read the store instead.
   */
  signalHealth(): SignalHealth;
  subscribe(listener: (signal: StoreSignal) => void): () => void;
}

export interface SignalHealth {
  live: boolean;
  /** `in_process`: one node (SQLite), nothing to lose; `listen_notify`: PostgreSQL's listener session. */
  mode: 'in_process' | 'listen_notify';
  /** When the current state began (ms since the epoch). */
  since: number;
  /** Times the listener came back after losing its connection. */
  reconnects: number;
  lastError: string | null;
}

/** How each status counts in the daily usage. */
export function isErrorStatus(status: TraceStatus): boolean {
  return status === 'error' || status === 'timeout';
}

/** Groups new rows into per (app, day) usage increments, sorted so concurrent writers lock in one order. */
export function usageIncrements(rows: readonly TraceRow[], isNew: readonly boolean[]): Array<{ clientId: string; day: string; traces: number; errors: number }> {
  const byKey = new Map<string, { clientId: string; day: string; traces: number; errors: number }>();
  for (let i = 0; i < rows.length; i++) {
    if (!isNew[i]) continue;
    const row = rows[i]!;
    const key = `${row.clientId}\u0000${row.day}`;
    let inc = byKey.get(key);
    if (inc === undefined) {
      inc = { clientId: row.clientId, day: row.day, traces: 0, errors: 0 };
      byKey.set(key, inc);
    }
    inc.traces++;
    if (isErrorStatus(row.status)) inc.errors++;
  }
  return [...byKey.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
}
