import type { EngineMigration } from './migration.js';

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

export const guard: EngineMigration = {
  version: 2,
  name: 'AI Guard: policies, kill switch, checks, approvals, grants, webhooks, HMAC secrets, audit',
  sqlite: GUARD_SQL,
  postgres: GUARD_SQL,
};
