/**
 * Versioned migrations, one list per engine. A migration is applied once, in order, inside a
 * transaction, and recorded in `schema_migrations`; never edit one that has shipped, add the next.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  /**
   * After `sql`, in the same transaction: close every unkeyed audit chain with a keyed
   * `audit.keyed` entry (guard-sql.ts, sealUnkeyedInput). Needs the audit key, so it is code the
   * engines run, not SQL.
   */
  sealUnkeyedAudit?: boolean;
}

export const TRACE_COLUMNS = [
  'client_id', 'event_id', 'tool', 'scope_used', 'status', 'started_at_us', 'day', 'duration_ms',
  'user_sub', 'error_message', 'session_id', 'attributes', 'key_id', 'received_at', 'check_id',
] as const;

export const sqliteMigrations: Migration[] = [
  {
    version: 1,
    name: 'accounts, apps, keys, traces, usage',
    sql: `
      CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_owner INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE TABLE operator_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        prefix TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
      );
      CREATE TABLE apps (
        client_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        panopticon_enabled INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX apps_by_account ON apps(account_id, created_at);
      CREATE TABLE paks (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        expires_at INTEGER,
        revoked_at INTEGER
      );
      CREATE INDEX paks_by_app ON paks(client_id);
      -- At most one primary key per app; rotated-out keys (expires_at set) live on through their grace.
      CREATE UNIQUE INDEX paks_one_primary ON paks(client_id) WHERE revoked_at IS NULL AND expires_at IS NULL;
      CREATE TABLE traces (
        seq INTEGER PRIMARY KEY,
        client_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        scope_used TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at_us INTEGER NOT NULL,
        day TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        user_sub TEXT,
        error_message TEXT,
        session_id TEXT,
        attributes TEXT,
        key_id TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        UNIQUE (client_id, event_id)
      );
      CREATE INDEX traces_timeline ON traces(client_id, started_at_us DESC, seq DESC);
      CREATE TABLE usage_daily (
        client_id TEXT NOT NULL,
        day TEXT NOT NULL,
        traces INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        hitl_requests INTEGER NOT NULL DEFAULT 0,
        kill_switch INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (client_id, day)
      );
    `,
  },
];

export const postgresMigrations: Migration[] = [
  {
    version: 1,
    name: 'accounts, apps, keys, traces, usage',
    sql: `
      CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_owner BOOLEAN NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      );
      CREATE TABLE operator_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        prefix TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT,
        revoked_at BIGINT
      );
      CREATE TABLE apps (
        client_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        panopticon_enabled BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX apps_by_account ON apps(account_id, created_at);
      CREATE TABLE paks (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT,
        expires_at BIGINT,
        revoked_at BIGINT
      );
      CREATE INDEX paks_by_app ON paks(client_id);
      -- At most one primary key per app; rotated-out keys (expires_at set) live on through their grace.
      CREATE UNIQUE INDEX paks_one_primary ON paks(client_id) WHERE revoked_at IS NULL AND expires_at IS NULL;
      CREATE TABLE traces (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        client_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        scope_used TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at_us BIGINT NOT NULL,
        day TEXT NOT NULL,
        duration_ms BIGINT NOT NULL,
        user_sub TEXT,
        error_message TEXT,
        session_id TEXT,
        attributes TEXT,
        key_id TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        UNIQUE (client_id, event_id)
      );
      CREATE INDEX traces_timeline ON traces(client_id, started_at_us DESC, seq DESC);
      CREATE TABLE usage_daily (
        client_id TEXT NOT NULL,
        day TEXT NOT NULL,
        traces BIGINT NOT NULL DEFAULT 0,
        errors BIGINT NOT NULL DEFAULT 0,
        hitl_requests BIGINT NOT NULL DEFAULT 0,
        kill_switch BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (client_id, day)
      );
    `,
  },
];

/**
 * Version 2, AI Guard. Written once for both engines: integers for times and flags, TEXT for JSON.
 *
 * - policies: one versioned document per app (ordered rules + default effect); every change is a
 *   compare-and-set on `version`, so a stale editor cannot overwrite a newer policy.
 * - kill_switches: app-wide (tool '*') or per tool.
 * - guard_checks: every decision, with only a hash of the arguments unless the app keeps them.
 * - rate_counters: fixed-window counters of rate-limited rules, shared by every node.
 * - approvals / grants: HITL requests and the remembered answers that skip the next identical ask.
 * - webhooks / webhook_deliveries: notification endpoints and an outbox of signed deliveries.
 * - app_secrets: HMAC signing secrets, AES-256-GCM encrypted under the server key.
 * - audit_log: per-app hash chain; apps.audit_head/audit_count pin its tail.
 */
const GUARD_SQL = `
      ALTER TABLE apps ADD COLUMN hmac_enabled INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE apps ADD COLUMN keep_arguments INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE apps ADD COLUMN audit_head TEXT;
      ALTER TABLE apps ADD COLUMN audit_count BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE traces ADD COLUMN check_id TEXT;
      CREATE TABLE policies (
        client_id TEXT PRIMARY KEY REFERENCES apps(client_id),
        version BIGINT NOT NULL,
        document TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        updated_by TEXT NOT NULL
      );
      CREATE TABLE kill_switches (
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        tool TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (client_id, tool)
      );
      CREATE TABLE guard_checks (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        tool TEXT NOT NULL,
        scope TEXT NOT NULL,
        user_sub TEXT,
        session_id TEXT,
        event_id TEXT,
        arguments_hash TEXT NOT NULL,
        arguments TEXT,
        decision TEXT NOT NULL,
        reason TEXT NOT NULL,
        rule_id TEXT,
        policy_version BIGINT NOT NULL,
        approval_id TEXT,
        grant_id TEXT,
        key_id TEXT NOT NULL
      );
      CREATE INDEX guard_checks_recent ON guard_checks(client_id, created_at DESC);
      CREATE TABLE rate_counters (
        bucket TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        count BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (bucket, window_start)
      );
      CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        check_id TEXT NOT NULL,
        rule_id TEXT,
        tool TEXT NOT NULL,
        scope TEXT NOT NULL,
        user_sub TEXT,
        session_id TEXT,
        arguments_hash TEXT NOT NULL,
        reason TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        decided_at BIGINT,
        decided_by TEXT,
        comment TEXT,
        remember TEXT,
        grant_id TEXT
      );
      CREATE INDEX approvals_by_app ON approvals(client_id, status, created_at DESC);
      CREATE INDEX approvals_pending_expiry ON approvals(status, expires_at);
      CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        kind TEXT NOT NULL,
        tool TEXT NOT NULL,
        user_sub TEXT,
        session_id TEXT,
        arguments_hash TEXT NOT NULL,
        approval_id TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT,
        uses BIGINT NOT NULL DEFAULT 0
      );
      CREATE INDEX grants_by_app ON grants(client_id, revoked_at);
      CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        url TEXT NOT NULL,
        format TEXT NOT NULL,
        events TEXT NOT NULL,
        secret_enc TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX webhooks_by_app ON webhooks(client_id);
      CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks(id),
        client_id TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        lease_until BIGINT,
        last_status_code INTEGER,
        last_error TEXT,
        created_at BIGINT NOT NULL,
        completed_at BIGINT
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
      CREATE INDEX webhook_deliveries_by_app ON webhook_deliveries(client_id, created_at DESC);
      CREATE TABLE app_secrets (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        secret_enc TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT
      );
      CREATE INDEX app_secrets_by_app ON app_secrets(client_id);
      CREATE TABLE audit_log (
        client_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        before TEXT,
        after TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (client_id, seq)
      );
`;

sqliteMigrations.push({ version: 2, name: 'AI Guard: policies, kill switch, checks, approvals, grants, webhooks, HMAC secrets, audit', sql: GUARD_SQL });
postgresMigrations.push({ version: 2, name: 'AI Guard: policies, kill switch, checks, approvals, grants, webhooks, HMAC secrets, audit', sql: GUARD_SQL });

/**
 * Version 4, the console (3 is reserved for a concurrent branch). The live stream reads "this
 * app's traces after seq X" on every commit; without (client_id, seq) that query walks the app's
 * whole timeline index and sorts it.
 */
const CONSOLE_SQL = `
      CREATE INDEX traces_by_app_seq ON traces(client_id, seq);
`;
sqliteMigrations.push({ version: 4, name: 'console: live stream index', sql: CONSOLE_SQL });
postgresMigrations.push({ version: 4, name: 'console: live stream index', sql: CONSOLE_SQL });

/**
 * Version 5: the row /healthz writes to find out whether the store takes writes (after a write
 * failed: a full disk, a held lock, a read-only database).
 */
const HEALTH_SQL = `
      CREATE TABLE health_probe (id INTEGER PRIMARY KEY, at BIGINT NOT NULL);
`;
sqliteMigrations.push({ version: 5, name: 'health probe', sql: HEALTH_SQL });
postgresMigrations.push({ version: 5, name: 'health probe', sql: HEALTH_SQL });

/**
 * Version 6, approval floods and replays (docs/security.md):
 * - idempotency_keys: what a guard check answered, by `Idempotency-Key` header (`key:<value>`, kept
 *   24 h) or by the digest of a signed request (`sig:<hex>`, kept while the signature could be
 *   replayed), so a retry or a replay is answered the first answer and stores nothing new. The
 *   expiry index serves the sweep.
 * - webhook_deliveries_outbox: counting an endpoint's undelivered rows (the outbox bound) and
 *   finding its oldest ones reads this index instead of the app's whole history.
 */
const FLOODS_SQL = `
      CREATE TABLE idempotency_keys (
        client_id TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        check_id TEXT NOT NULL,
        answer TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (client_id, key)
      );
      CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);
      CREATE INDEX webhook_deliveries_outbox ON webhook_deliveries(webhook_id, status, created_at);
`;
sqliteMigrations.push({ version: 6, name: 'approval floods: idempotency keys, outbox index', sql: FLOODS_SQL });
postgresMigrations.push({ version: 6, name: 'approval floods: idempotency keys, outbox index', sql: FLOODS_SQL });

/**
 * Version 7: the audit chain is keyed (src/crypto/audit-chain.ts). Entries already written keep their
 * unkeyed SHA-256 hashes and are marked chain 1; every entry from now on is chain 2 (HMAC under a
 * key derived from the server key). In the same transaction each app whose log ends unkeyed gets a
 * keyed `audit.keyed` entry closing that prefix, so an unkeyed entry after it, or a log that ends
 * unkeyed, can only be tampering.
 */
const KEYED_AUDIT_SQL = `
      ALTER TABLE audit_log ADD COLUMN chain INTEGER NOT NULL DEFAULT 1;
`;
sqliteMigrations.push({ version: 7, name: 'keyed audit chain', sql: KEYED_AUDIT_SQL, sealUnkeyedAudit: true });
postgresMigrations.push({ version: 7, name: 'keyed audit chain', sql: KEYED_AUDIT_SQL, sealUnkeyedAudit: true });

/**
 * Version 8, MCP tool pinning (src/store/tool-types.ts):
 * - tools: every tool name an app's MCP server listed, its pinned (approved) definition and the
 *   one it showed last.
 * - tool_definitions: every distinct definition of a name (canonical JSON and its SHA-256), with
 *   its status: approved (the pin), pending (quarantined), rejected, superseded (an old pin).
 * - apps.new_tools: whether a name not seen before is pinned at once (`allow`) or waits for an
 *   operator (`require_approval`).
 */
const TOOLS_SQL = `
      ALTER TABLE apps ADD COLUMN new_tools TEXT NOT NULL DEFAULT 'allow';
      CREATE TABLE tools (
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        name TEXT NOT NULL,
        pinned_id TEXT,
        last_seen_id TEXT NOT NULL,
        first_seen_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        PRIMARY KEY (client_id, name)
      );
      CREATE TABLE tool_definitions (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES apps(client_id),
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        definition TEXT NOT NULL,
        status TEXT NOT NULL,
        first_seen_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        decided_at BIGINT,
        decided_by TEXT,
        UNIQUE (client_id, name, hash)
      );
`;
sqliteMigrations.push({ version: 8, name: 'MCP tool pinning', sql: TOOLS_SQL });
postgresMigrations.push({ version: 8, name: 'MCP tool pinning', sql: TOOLS_SQL });
