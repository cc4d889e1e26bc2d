/** Every migration, in order; each engine applies its own SQL of each (see migration.ts). */
import { core } from './001-core.js';
import { guard } from './002-guard.js';
import { console } from './004-console.js';
import { healthProbe } from './005-health-probe.js';
import { approvalFloods } from './006-approval-floods.js';
import { keyedAudit } from './007-keyed-audit.js';
import { toolPinning } from './008-tool-pinning.js';
import type { EngineMigration, Migration } from './migration.js';

export type { Migration } from './migration.js';

export const migrations: readonly EngineMigration[] = [core, guard, console, healthProbe, approvalFloods, keyedAudit, toolPinning];

const forEngine = (engine: 'sqlite' | 'postgres'): Migration[] =>
  migrations.map((m) => ({ version: m.version, name: m.name, sql: m[engine], ...(m.sealUnkeyedAudit ? { sealUnkeyedAudit: true } : {}) }));

export const sqliteMigrations: readonly Migration[] = forEngine('sqlite');
export const postgresMigrations: readonly Migration[] = forEngine('postgres');
