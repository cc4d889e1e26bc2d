/** Version 1: accounts, apps, keys, traces and daily usage. The engines differ in types (INTEGER vs BIGINT, booleans, sequences). */
import type { EngineMigration } from './migration.js';

export const core: EngineMigration = {
  version: 1,
  name: 'accounts, apps, keys, traces, usage',
  sqlite: `
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
  postgres: `
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
};
