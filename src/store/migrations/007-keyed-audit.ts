import type { EngineMigration } from './migration.js';

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

export const keyedAudit: EngineMigration = {
  version: 7,
  name: 'keyed audit chain',
  sqlite: KEYED_AUDIT_SQL,
  postgres: KEYED_AUDIT_SQL,
  sealUnkeyedAudit: true,
};
