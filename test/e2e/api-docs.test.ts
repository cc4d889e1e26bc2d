/**
 * docs/api.md is executable: every ```sh example in it runs against a real server, in document
 * order, and must print the response shown in the ```http block after it. The file must also name
 * every error code of the catalogue (with its status), every value of LIMITS, and exactly the
 * routes the server registers; /openapi.json must list the same routes and the same error codes.
 *
 * How examples are written and matched (the full convention is in test/support/doc-examples.ts and at the
 * top of docs/api.md):
 *   - ```sh blocks run with bash, one after another, in one scratch directory, with only these
 *     variables set: PANOPTICON_URL, PAK, CLIENT_ID (an app with Panopticon on and one PAK), TOKEN
 *     (an operator token of the account that owns the app). The app is renamed "My agent" first,
 *     so examples can show its name. PAK_SECRET is set from the responses themselves: whenever an
 *     example prints a `pak_secret` (HMAC enable or rotate), later examples get it, as a reader
 *     would copy it; the HMAC signing example runs with it verbatim.
 *   - They call curl with -i, so each response prints its status line and headers; the ```http
 *     block lists the expected status line(s), optionally headers and body, with `…` for text that
 *     varies (a bare `…` where a JSON value goes, as in `"server_time":…`, for any number). The last responses printed are compared with the expected ones.
 *   - The server runs with PANOPTICON_PAK_RATE_LIMIT=50 (instead of 1000) so the rate-limit
 *     example reaches the limit quickly on any machine.
 *
 * Runs on SQLite and PostgreSQL (fresh store each); about 2-4 s per engine.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ERRORS } from '../../src/errors.js';
import { buildServer } from '../../src/http/server.js';
import { openStore } from '../../src/store/index.js';
import { LIMITS } from '../../src/traces/schema.js';
import { createTenant, ENGINES, freshLocation, http, REPO_ROOT, startServer, tempDir, TEST_AUDIT_KEY, testConfig, type RunningServer, type Tenant } from '../support/harness.js';
import { extractExamples, foreignVariables, parseCurlOutput, responseMismatches, routesFromTree, type DocExample } from '../support/doc-examples.js';

const DOC_PATH = path.join(REPO_ROOT, 'docs', 'api.md');
const markdown = fs.readFileSync(DOC_PATH, 'utf8');
const examples = extractExamples(markdown);

/** Routes the server serves but keeps out of the OpenAPI document (schema.hide). */
const HIDDEN_FROM_OPENAPI = ['GET /healthz', 'GET /livez', 'GET /openapi.json'];

/** The text of one `## heading` section, up to the next `## `. */
function section(title: string): string {
  const start = markdown.search(new RegExp(`^## ${title}\\b`, 'm'));
  assert.ok(start >= 0, `docs/api.md has no "## ${title}" section`);
  const rest = markdown.slice(start + 3);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** `### \`METHOD /path\`` headings: the endpoints the reference documents. */
function documentedRoutes(): string[] {
  return [...markdown.matchAll(/^#{2,4} `(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`/gm)].map((m) => `${m[1]} ${m[2]}`);
}

async function registeredRoutes(): Promise<string[]> {
  const { location, cleanup } = freshLocation('sqlite');
  const store = await openStore(location, { auditKey: TEST_AUDIT_KEY });
  try {
    const { app } = await buildServer(testConfig(location), store);
    await app.ready();
    const routes = routesFromTree(app.printRoutes({ commonPrefix: false }));
    await app.close();
    return routes;
  } finally {
    await store.close();
    await cleanup();
  }
}

function runBash(script: string, env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { env, cwd, timeout: 15_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('docs/api.md: content', () => {
  it('has runnable examples, each with an expected response, using only the example inputs', () => {
    assert.ok(examples.length >= 20, `only ${examples.length} examples found`);
    for (const ex of examples) {
      assert.deepEqual(foreignVariables(ex.script), [], `example at line ${ex.line} reads variables that are not example inputs`);
      assert.match(ex.script, /\bcurl\b/, `example at line ${ex.line} does not call curl`);
    }
  });

  it('covers the error cases a client meets first', () => {
    const statuses = new Set(examples.flatMap((ex) => ex.expected.map((e) => e.status)));
    for (const status of [200, 201, 202, 204, 207, 400, 401, 403, 404, 409, 413, 415, 429]) {
      assert.ok(statuses.has(status), `no example shows HTTP ${status}`);
    }
    const codes = new Set(examples.flatMap((ex) => ex.expected.flatMap((e) => [...(e.body ?? '').matchAll(/"code":\s*"(\w+)"/g)].map((m) => m[1]))));
    for (const code of ['pak_missing', 'unsupported_media_type', 'validation_failed', 'client_id_mismatch', 'payload_too_large', 'rate_limited']) {
      assert.ok(codes.has(code), `no example shows ${code}`);
    }
  });

  it('lists every error code of the catalogue, with its status, and no other', () => {
    const errors = section('Errors');
    const rows = new Map([...errors.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [m[1]!, Number(m[2])]));
    const catalogue = new Map(Object.entries(ERRORS).map(([code, e]) => [code, e.status]));
    assert.deepEqual(Object.fromEntries(rows), Object.fromEntries(catalogue));
  });

  it('lists every value of LIMITS', () => {
    const limits = section('Limits');
    for (const [key, value] of Object.entries(LIMITS)) {
      const row = limits.split('\n').find((l) => l.startsWith('|') && l.includes(`\`${key}\``));
      assert.ok(row, `the Limits table has no row for \`${key}\``);
      assert.match(row, new RegExp(`(^|[^\\d])${value}([^\\d]|$)`), `the row for ${key} does not state ${value}`);
    }
  });

  it('documents exactly the routes the server registers', async () => {
    const documented = documentedRoutes();
    assert.equal(new Set(documented).size, documented.length, 'an endpoint is documented twice');
    assert.deepEqual([...documented].sort(), (await registeredRoutes()).sort());
  });
});

for (const engine of ENGINES) {
  describe(`docs/api.md examples [${engine}]`, () => {
    let server: RunningServer;
    let tenant: Tenant;
    let env: Record<string, string>;
    let cwd: string;

    before(async () => {
      // The documented defaults: webhooks to private addresses are refused, as on a fresh install.
      server = await startServer(engine, { pakRateLimitPerSecond: 50, webhookAllowPrivate: false });
      tenant = await createTenant(server.url);
      const renamed = await http(server.url, 'PATCH', `/api/apps/${tenant.clientId}`, { token: tenant.token, body: { name: 'My agent' } });
      assert.equal(renamed.status, 200);
      cwd = tempDir('docs');
      env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: cwd,
        LC_ALL: 'C',
        PANOPTICON_URL: server.url,
        PAK: tenant.pak,
        CLIENT_ID: tenant.clientId,
        TOKEN: tenant.token,
      };
    });
    after(async () => {
      await server?.close();
      if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
    });

    if (engine === 'sqlite') {
      it('serves /openapi.json listing every registered route and the error catalogue', async () => {
        const res = await fetch(`${server.url}/openapi.json`);
        assert.equal(res.status, 200);
        const doc = JSON.parse(await res.text()) as { paths: Record<string, Record<string, unknown>>; 'x-error-codes': unknown };
        const listed = Object.entries(doc.paths).flatMap(([p, ops]) =>
          Object.keys(ops).map((method) => `${method.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`),
        );
        const registered = (await registeredRoutes()).filter((r) => !HIDDEN_FROM_OPENAPI.includes(r));
        assert.deepEqual(listed.sort(), registered.sort());
        assert.deepEqual(listed.sort(), documentedRoutes().filter((r) => !HIDDEN_FROM_OPENAPI.includes(r)).sort());
        assert.deepEqual(doc['x-error-codes'], Object.fromEntries(Object.entries(ERRORS).map(([c, e]) => [c, e.status])));
      });
    }

    examples.forEach((ex: DocExample, index) => {
      it(`example ${index + 1} (docs/api.md line ${ex.line})`, async () => {
        const run = await runBash(ex.script, env, cwd);
        const where = `docs/api.md line ${ex.line}`;
        assert.equal(run.code, 0, `${where}: bash exited ${run.code}\n${run.stderr}\n${run.stdout.slice(-2000)}`);
        const actual = parseCurlOutput(run.stdout);
        for (const response of actual) {
          const secret = /"pak_secret"\s*:\s*"(pano_sec_\w+)"/.exec(response.body)?.[1];
          if (secret !== undefined) env.PAK_SECRET = secret;
        }
        assert.ok(
          actual.length >= ex.expected.length,
          `${where}: expected ${ex.expected.length} response(s), the example printed ${actual.length}:\n${run.stdout.slice(-2000)}\n${run.stderr}`,
        );
        const last = actual.slice(actual.length - ex.expected.length);
        const problems = ex.expected.flatMap((expected, k) => responseMismatches(expected, last[k]!).map((p) => `response ${k + 1}: ${p}`));
        assert.deepEqual(problems, [], `${where}:\n${problems.join('\n')}\n--- printed ---\n${run.stdout.slice(-3000)}`);
      });
    });
  });
}
