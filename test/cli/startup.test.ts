/**
 * `logi` starts fast: a command that only talks HTTP must not load the server's libraries. Every
 * CLI call pays its import graph, and the schema library alone (about 900 modules) cost 130 ms of
 * a 330 ms `logi --help`; the YAML library and the MCP proxy's SDK another 65 ms of CPU of the
 * remaining 240. A module-resolution hook records what one run loads.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { LOGI_BIN } from '../support/harness.js';
import { run } from '../support/logi.js';

const SERVER_ONLY = ['@sinclair/typebox', 'fastify', 'better-sqlite3', 'node_modules/pg/', 'ajv'];
/** Loaded by the commands that use them (policies import/export/simulate, mcp proxy), not at start-up. */
const ON_DEMAND = ['node_modules/yaml/', 'sdk/dist/', 'mcp-proxy/governor.js', 'mcp-proxy/stdio.js'];

async function modulesLoaded(args: string[]): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logi-startup-'));
  try {
    const log = path.join(dir, 'resolved.txt');
    const hook = path.join(dir, 'hook.mjs');
    fs.writeFileSync(hook, `import fs from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  fs.appendFileSync(${JSON.stringify(log)}, result.url + '\\n');
  return result;
}\n`);
    const register = `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hook).href)});`;
    const res = await run(process.execPath, ['--import', register, LOGI_BIN, ...args], {});
    assert.equal(res.code, 0, res.stderr);
    return fs.readFileSync(log, 'utf8').trim().split('\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('logi startup', () => {
  for (const args of [['--help'], ['apps', 'create', '--help'], ['mcp', 'proxy', '--help']]) {
    it(`logi ${args.join(' ')} loads none of the server's libraries`, async () => {
      const loaded = await modulesLoaded(args);
      assert.ok(loaded.some((url) => url.includes('/commander/')), 'the hook saw the CLI load');
      assert.deepEqual(loaded.filter((url) => SERVER_ONLY.some((lib) => url.includes(lib))), []);
      assert.deepEqual(loaded.filter((url) => ON_DEMAND.some((lib) => url.includes(lib))), []);
    });
  }
});
