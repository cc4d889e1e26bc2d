/**
 * docs/mcp-proxy.md and `logi mcp proxy --help` describe the same command: the Flags table names
 * exactly the options the command has, and the help points at the document. Usage errors exit 2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LOGI_BIN, REPO_ROOT } from '../support/harness.js';

function logi(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [LOGI_BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1, stdout, stderr });
    });
  });
}

describe('logi mcp proxy: --help and docs/mcp-proxy.md', () => {
  it('the Flags table lists exactly the options of --help', async () => {
    const help = await logi('mcp', 'proxy', '--help');
    assert.equal(help.code, 0, help.stderr);
    const options = help.stdout.slice(help.stdout.indexOf('Options:'));
    const fromHelp = [...options.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]!).filter((f) => f !== '--help').sort();
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'mcp-proxy.md'), 'utf8');
    const table = doc.slice(doc.indexOf('## Flags'), doc.indexOf('\n## ', doc.indexOf('## Flags') + 3));
    const fromDoc = [...table.matchAll(/^\| `(--[a-z-]+)/gm)].map((m) => m[1]!).sort();
    assert.ok(fromHelp.length >= 15, help.stdout);
    assert.deepEqual(fromDoc, fromHelp);
    assert.match(help.stdout, /docs\/mcp-proxy\.md/);
  });

  it('usage errors exit 2 with a message: no server, both modes, a bad --listen, no PAK', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--client-id', 'logi_000000000000', '--pak', 'p'], /name the MCP server to launch after --/],
      [['--client-id', 'logi_000000000000', '--pak', 'p', '--upstream', 'https://x.example/mcp', '--', 'node'], /--upstream relays a remote server: give no command after --/],
      [['--client-id', 'logi_000000000000', '--pak', 'p', '--upstream', 'https://x.example/mcp', '--listen', 'nowhere'], /--listen: "nowhere" is not HOST:PORT/],
      [['--client-id', 'logi_000000000000', '--', 'node'], /--pak or LOGI_PAK is required/],
      [['--client-id', 'logi_000000000000', '--pak', 'p', '--user-sub-from', 'jwt:sub', '--', 'node'], /--user-sub-from needs --upstream/],
    ];
    for (const [args, message] of cases) {
      const r = await logi('mcp', 'proxy', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
