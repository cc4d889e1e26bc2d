import type { EngineMigration } from './migration.js';

/**
 * Version 8, MCP tool pinning (src/store/types/tools.ts):
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

export const toolPinning: EngineMigration = {
  version: 8,
  name: 'MCP tool pinning',
  sqlite: TOOLS_SQL,
  postgres: TOOLS_SQL,
};
