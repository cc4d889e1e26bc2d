/**
 * The ingest benchmark still runs: `npm run bench -- --smoke` end to end (server child processes on
 * SQLite and PostgreSQL, the ceiling, autocannon, the CPU profile, the report), in a few seconds.
 * It checks that the benchmark works, not how fast anything is.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

const RUN_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/run.js');

test('npm run bench -- --smoke writes a results table with both engines', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panopticon-bench-smoke-'));
  const out = path.join(dir, 'benchmarks.md');
  try {
    let output = '';
    const child = spawn(process.execPath, [RUN_JS, '--smoke', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, output);
    const md = fs.readFileSync(out, 'utf8');
    const table = md.slice(md.indexOf('## Results'), md.indexOf('### Ratios'));
    assert.match(table, /\| scenario \| engine \| req\/s \| traces\/s \| p50 ms \| p99 ms \| non-2xx/);
    const rows = table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| scenario') && !l.startsWith('| ---'));
    assert.ok(rows.some((r) => r.includes('CEILING')), table);
    for (const engine of ['SQLite', 'PostgreSQL']) {
      const row = rows.find((r) => r.includes(`| ${engine} |`) && r.includes('single trace'));
      assert.ok(row, `no single-trace row for ${engine}:\n${table}`);
      const cells = row.split('|').map((c) => c.trim());
      assert.ok(Number(cells[3]!.replace(/,/g, '')) > 0, `no requests measured for ${engine}: ${row}`);
      assert.equal(cells[7], '0', `non-2xx responses for ${engine}: ${row}`);
    }
    assert.match(md, /## Targets/);
    assert.match(md, /## Where the time goes/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const GUARD_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/guard.js');

test('npm run bench:guard -- --smoke writes the decision and check tables for both engines', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panopticon-guard-smoke-'));
  const out = path.join(dir, 'benchmarks-guard.md');
  try {
    let output = '';
    const child = spawn(process.execPath, [GUARD_JS, '--smoke', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, output);
    const md = fs.readFileSync(out, 'utf8');
    assert.match(md, /## Decision, in-process/);
    const decision = md.split('\n').find((l) => /^\| [\d,]+ \| [\d.]+ (µs|ms) \|/.test(l));
    assert.ok(decision, md);
    for (const engine of ['SQLite', 'PostgreSQL']) {
      const rows = md.split('\n').filter((l) => l.startsWith(`| ${engine} |`));
      assert.equal(rows.length, 2, `${engine}: one row per concurrency:\n${md}`);
      for (const row of rows) assert.ok(Number(row.split('|')[3]!.trim().replace(/,/g, '')) > 0, row);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const MCP_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/mcp-proxy.js');

test('npm run bench:mcp -- --smoke writes the relay table: direct, proxy with the guard off and on, the check alone', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panopticon-mcp-smoke-'));
  const out = path.join(dir, 'benchmarks-mcp.md');
  try {
    let output = '';
    const child = spawn(process.execPath, [MCP_JS, '--smoke', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, output);
    const md = fs.readFileSync(out, 'utf8');
    for (const mode of ['direct', 'proxy, guard off', 'proxy, guard on', 'guard check alone']) {
      assert.match(md, new RegExp(`^\\| ${mode} \\| 50 \\| [\\d.]+ ms \\|`, 'm'), md);
    }
    assert.match(md, /\*\*The relay adds -?[\d.]+ ms p50\*\*/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
