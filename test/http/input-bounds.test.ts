/**
 * Every integer a client can send (path, query, body) is bounded in its schema, so a value past
 * what the database column holds (PostgreSQL bigint) is a 400, never a 500 from the driver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, http, startServer, type RunningServer } from '../support/harness.js';

type Schema = Record<string, any>;

/** Paths ("GET /x body.a.b") of integer schemas under `schema` that lack a minimum or a maximum. */
function unbounded(schema: Schema | undefined, where: string, out: string[]): void {
  if (schema === undefined || schema === null || typeof schema !== 'object') return;
  if (schema.type === 'integer' && (typeof schema.maximum !== 'number' || typeof schema.minimum !== 'number' || schema.maximum > Number.MAX_SAFE_INTEGER)) out.push(where);
  for (const [key, value] of Object.entries(schema.properties ?? {})) unbounded(value as Schema, `${where}.${key}`, out);
  for (const key of ['items', 'additionalProperties'] as const) if (typeof schema[key] === 'object') unbounded(schema[key], `${where}[]`, out);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) for (const s of schema[key] ?? []) unbounded(s, where, out);
}

describe('input bounds', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer('sqlite');
  });
  after(() => server.close());

  it('every integer parameter and body field in /openapi.json has a minimum and a maximum within 2^53', async () => {
    const doc = (await http(server.url, 'GET', '/openapi.json')).body;
    const missing: string[] = [];
    let seen = 0;
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Schema>>)) {
      for (const [method, op] of Object.entries(ops)) {
        const name = `${method.toUpperCase()} ${path}`;
        for (const p of op.parameters ?? []) {
          seen++;
          unbounded(p.schema, `${name} ${p.in}.${p.name}`, missing);
        }
        const body = op.requestBody?.content?.['application/json']?.schema;
        if (body !== undefined) seen++;
        unbounded(body, `${name} body`, missing);
      }
    }
    assert.ok(seen > 30, 'the walk found the inputs');
    assert.deepEqual(missing, []);
  });
});

for (const engine of ENGINES) {
  describe(`numbers past bigint [${engine}]`, () => {
    let server: RunningServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(() => server.close());

    it('answers 400 validation_failed for a query integer past what the store can hold', async () => {
      const t = await createTenant(server.url);
      for (const path of [`/api/apps/${t.clientId}/audit?before_seq=99999999999999999999`, `/api/apps/${t.clientId}/live?after=99999999999999999999`]) {
        const res = await http(server.url, 'GET', path, { token: t.token });
        assert.equal(res.status, 400, `${path}: ${res.text}`);
        assert.equal(res.body.error.code, 'validation_failed');
      }
    });
  });
}
