/**
 * Where tests keep their data, without the server: the engines this run tests, a fresh SQLite file
 * or PostgreSQL schema per store, and the test keys. The store suites need only this, and importing
 * the whole harness (the server, Fastify, the schemas) cost each of them about half a second of CPU.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreLocation } from '../../src/config.js';
import { AuditKey } from '../../src/crypto/audit-key.js';

const ALL_ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ALL_ENGINES)[number];

/**
 * The engines this run tests: `PANOPTICON_TEST_ENGINES=sqlite` (or `postgres`, or both, comma
 * separated); both when unset. An unknown name fails the run rather than silently testing less.
 */
export const ENGINES: readonly Engine[] = selectEngines(process.env.PANOPTICON_TEST_ENGINES);

function selectEngines(spec: string | undefined): readonly Engine[] {
  if (spec === undefined || spec.trim() === '') return ALL_ENGINES;
  const names = spec.split(',').map((name) => name.trim()).filter((name) => name !== '');
  for (const name of names) {
    if (!(ALL_ENGINES as readonly string[]).includes(name)) {
      throw new Error(`PANOPTICON_TEST_ENGINES: unknown engine "${name}" (expected sqlite, postgres or both)`);
    }
  }
  return ALL_ENGINES.filter((engine) => names.includes(engine));
}

/** For suites that only exist on PostgreSQL (several nodes on one database): the reason they skip. */
export const POSTGRES_ONLY = { skip: ENGINES.includes('postgres') ? false : 'PostgreSQL not selected (PANOPTICON_TEST_ENGINES)' };

/** The shared PostgreSQL test database; each run makes its own schemas in it. */
export const PG_URL = process.env.PANOPTICON_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const LOGI_BIN = path.join(REPO_ROOT, 'bin', 'logi.js');

export function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `panopticon-${label}-`));
}

/** A fresh, empty store location for one engine, and how to get rid of it. */
export function freshLocation(engine: Engine): { location: StoreLocation; dbValue: string; cleanup: () => Promise<void> } {
  if (engine === 'sqlite') {
    const dir = tempDir('db');
    const file = path.join(dir, 'panopticon.db');
    return { location: { engine, file }, dbValue: file, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
  }
  const schema = `pano_t_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  return {
    location: { engine, url: PG_URL, schema },
    dbValue: `${PG_URL}?schema=${schema}`,
    cleanup: async () => {
      const { PostgresStore } = await import('../../src/store/postgres/store.js');
      const admin = new PostgresStore(PG_URL, schema, 2, TEST_AUDIT_KEY);
      await admin.dropSchema().finally(() => admin.close());
    },
  };
}

/** One server key for every test server, so nodes sharing a database can read each other's secrets. */
export const TEST_SECRET_KEY = Buffer.alloc(32, 7);
/** The audit key test servers derive from TEST_SECRET_KEY: for stores opened without a server. */
export const TEST_AUDIT_KEY = AuditKey.fromServerKey(TEST_SECRET_KEY);
