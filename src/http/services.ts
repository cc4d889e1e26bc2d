/**
 * What the routes work with: the store, this node's caches, commit queues, background workers and
 * clock, built once per server. Routes and hooks receive this (or the narrow part they need); it
 * imports no route, so nothing that imports it depends on the routes.
 */
import type { ServerConfig } from '../config.js';
import type { Store } from '../store/types/store.js';
import { PakAuthenticator } from '../keys/authenticator.js';
import { TraceWriter, type CommittedListener, type TraceSink } from '../traces/writer.js';
import { ArgumentHasher } from '../guard/arguments-hash.js';
import { LiveHub } from '../live/hub.js';
import { GuardCache } from '../guard/cache.js';
import { GuardEvents } from '../guard/events.js';
import { loadServerKey, SecretBox } from '../crypto/secret-box.js';
import { AuditKey } from '../crypto/audit-key.js';
import { GroupCommit } from '../store/group-commit.js';
import type { CheckRecord, RecordOutcome } from '../store/types/guard.js';
import { DEFAULT_IDEMPOTENCY_SWEEP, IdempotencySweeper } from '../guard/idempotency.js';
import { ApprovalService, DEFAULT_HITL_SETTINGS, type HitlSettings } from '../approvals/service.js';
import { DEFAULT_WEBHOOK_SETTINGS, WebhookService, type WebhookSettings } from '../webhooks/service.js';

export interface Services {
  config: ServerConfig;
  store: Store;
  /** Trace ingest's group commit. */
  writer: TraceSink;
  paks: PakAuthenticator;
  /** Per-node cache of compiled policies, kill switches and grants. */
  guard: GuardCache;
  /** Group commit of guard decisions (and the approvals they open), each answered with what its commit did. */
  checks: GroupCommit<CheckRecord, RecordOutcome>;
  /** Deletes expired idempotency answers of guard checks. */
  idempotency: IdempotencySweeper;
  /** Governance events after commit: webhooks and live views subscribe. */
  events: GuardEvents;
  /** Seals and opens secrets stored in the database. */
  secrets: SecretBox;
  /** Keyed hashes of guard check arguments (one key per app, from the server key). */
  argumentHashes: ArgumentHasher;
  /** Keys the audit chain and signs its heads (derived from the server key; never stored or logged). */
  auditKey: AuditKey;
  /** Approval long polls, decisions, grants and the expiry sweeper. */
  approvals: ApprovalService;
  /** Webhook endpoints and the delivery worker of this node. */
  webhooks: WebhookService;
  /** Live Trace streams of this node, fed by every node's commits. */
  live: LiveHub;
  /** The held-back `traces_committed` signals of this node; flushed at shutdown. */
  commitSignals: { flush(): void };
  now: () => number;
}

export interface BuildOptions {
  now?: () => number;
  /**
   * Replaces trace ingest's group commit (TraceWriter): only the benchmark does, to measure its
   * naive baseline (bench/naive-writer.ts).
   */
  traceSink?: (store: Store, onCommitted: CommittedListener) => TraceSink;
  /** Tests shorten the expiry sweep. */
  hitl?: Partial<HitlSettings>;
  /** Tests shorten retries and backoff. */
  webhooks?: Partial<WebhookSettings>;
  /** The built console (index.html and assets); default console/dist of this checkout. */
  consoleDir?: string;
}

/** NOTIFY payloads are capped at 8000 bytes: a commit touching many apps is split into several signals. */
const APPS_PER_SIGNAL = 100;
/**
 * Under load the writer commits hundreds of times a second; one NOTIFY per commit cost PostgreSQL
 * a statement per commit for a signal live views only need a few dozen times a second.
 */
const COMMIT_SIGNAL_INTERVAL_MS = 25;

/**
 * Passes the first signal on at once (an idle system stays instant), then merges the apps of
 * every signal that follows within `intervalMs` into one, sent when the interval ends.
 */
export function coalesceSignals(send: (clientIds: ReadonlySet<string>) => void, intervalMs: number) {
  let held: Set<string> | null = null;
  let timer: NodeJS.Timeout | null = null;
  const openWindow = () => {
    timer = setTimeout(() => {
      timer = null;
      if (held === null) return;
      const ids = held;
      held = null;
      send(ids);
      openWindow();
    }, intervalMs);
    timer.unref();
  };
  const signal = (clientIds: ReadonlySet<string>) => {
    if (timer === null) {
      send(clientIds);
      openWindow();
      return;
    }
    held ??= new Set();
    for (const id of clientIds) held.add(id);
  };
  /** Sends what is held now (shutdown). */
  signal.flush = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (held === null) return;
    const ids = held;
    held = null;
    send(ids);
  };
  return signal;
}

/** Builds the services of one server; `logError` reports failures of background work. */
export function createServices(config: ServerConfig, store: Store, options: BuildOptions, logError: (err: unknown, what: string) => void): Services {
  const now = options.now ?? Date.now;
  const events = new GuardEvents();
  const serverKey = loadServerKey(config.secretKey, config.dataDir);
  const secrets = new SecretBox(serverKey);
  const argumentHashes = new ArgumentHasher(serverKey);
  const publishCommitted = (clientIds: ReadonlySet<string>) => {
    const ids = [...clientIds];
    for (let i = 0; i < ids.length; i += APPS_PER_SIGNAL) {
      store.publish({ kind: 'traces_committed', clientIds: ids.slice(i, i + APPS_PER_SIGNAL) }).catch((err: unknown) => {
        // Live views miss this commit until the next one; ingestion itself already succeeded.
        logError(err, 'could not publish traces_committed');
      });
    }
  };
  const onCommitted = coalesceSignals(publishCommitted, COMMIT_SIGNAL_INTERVAL_MS);
  return {
    config,
    store,
    writer: options.traceSink?.(store, onCommitted) ?? new TraceWriter(store, config.commitBatchSize, store.engine === 'postgres' ? 2 : 8, 100_000, onCommitted),
    paks: new PakAuthenticator(store, now, secrets),
    guard: new GuardCache(store, now),
    // One batch at a time on both engines, as check records have always committed.
    checks: new GroupCommit((records) => store.guard.recordChecks(records), { maxBatch: config.commitBatchSize }),
    idempotency: new IdempotencySweeper(store, now, DEFAULT_IDEMPOTENCY_SWEEP, (err) => logError(err, 'idempotency key sweep failed')),
    events,
    secrets,
    argumentHashes,
    auditKey: AuditKey.fromServerKey(serverKey),
    approvals: new ApprovalService(store, events, now, { ...DEFAULT_HITL_SETTINGS, ...options.hitl }, (err) => logError(err, 'approval expiry sweep failed')),
    webhooks: new WebhookService(store, events, secrets, now, { ...DEFAULT_WEBHOOK_SETTINGS, allowPrivateAddresses: config.webhookAllowPrivate, ...options.webhooks }, (err) => logError(err, 'webhook delivery failed')),
    // PostgreSQL commits overlap, so a lower seq can become visible late; a commit cannot take
    // longer than the lock timeout without failing, so re-reading that far back catches it.
    live: new LiveHub(store, { overlapMs: store.engine === 'postgres' ? config.lockTimeoutMs + 1000 : 0 }),
    commitSignals: onCommitted,
    now,
  };
}
