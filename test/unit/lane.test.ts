/**
 * test/lane.ts, which runs npm test's files: in the order given (node --test sorts by name), several
 * to a process where asked, with a failing file failing the run, and, when interrupted, with the
 * files' processes stopped too.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../support/locations.js';

const LANE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../lane.js');
// This file runs under node --test, which marks its processes as test files; run() in such a
// process runs nothing. The lane is started as npm test starts it.
const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
const dir = tempDir('lane');

/** A test file that appends its name to `log` when it starts, then does `body`. */
function testFile(name: string, body: string): string {
  const file = path.join(dir, `${name}.test.mjs`);
  const log = JSON.stringify(path.join(dir, 'started.log'));
  fs.writeFileSync(file, `import fs from 'node:fs';\nimport { test } from 'node:test';\nfs.appendFileSync(${log}, ${JSON.stringify(name)} + ' ' + process.pid + ' ' + process.argv[1] + '\\n');\ntest(${JSON.stringify(name)}, async () => { ${body} });\n`);
  return file;
}

/** Each file as it started: its name, its process, and the module that process ran. */
function started(): Array<{ name: string; pid: number; entry: string }> {
  const log = path.join(dir, 'started.log');
  if (!fs.existsSync(log)) return [];
  return fs.readFileSync(log, 'utf8').trim().split('\n').map((line) => {
    const [name, pid, entry] = line.split(' ');
    return { name: name!, pid: Number(pid), entry: entry! };
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('test/lane.ts', () => {
  // Inside the describe: this file may share a process with others (see lane.ts).
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs the files in the order given, one at a time by default, and exits 0 when all pass', () => {
    fs.rmSync(path.join(dir, 'started.log'), { force: true });
    const files = [testFile('zulu', ''), testFile('alpha', ''), testFile('mike', '')];
    const res = spawnSync(process.execPath, [LANE, '--reporter=tap', ...files], { encoding: 'utf8', env });
    assert.equal(res.status, 0, res.stdout + res.stderr);
    assert.deepEqual(started().map((s) => s.name), ['zulu', 'alpha', 'mike']);
    assert.match(res.stdout, /^# pass 3$/m);
  });

  it('--per-process N runs the files after it N to a process, in the order given, up to the next --per-process; the others alone', () => {
    fs.rmSync(path.join(dir, 'started.log'), { force: true });
    const alone = [testFile('first', ''), testFile('second', '')];
    const grouped = ['g1', 'g2', 'g3', 'g4', 'g5'].map((name) => testFile(name, ''));
    const nextSet = ['h1', 'h2'].map((name) => testFile(name, ''));
    const args = [LANE, '--reporter=tap', '--concurrency=2', ...alone, '--per-process', '2', ...grouped, '--per-process=2', ...nextSet];
    const res = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...env, TMPDIR: dir } });
    assert.equal(res.status, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /^# pass 9$/m);
    const pidOf = new Map(started().map((s) => [s.name, s.pid]));
    assert.equal(pidOf.size, 9);
    const processes = new Map<number, string[]>();
    for (const [name, pid] of pidOf) processes.set(pid, [...(processes.get(pid) ?? []), name]);
    // g5 is the end of its set: a repeated --per-process starts a new one.
    assert.deepEqual([...processes.values()].map((names) => names.join(' ')).sort(), ['first', 'g1 g2', 'g3 g4', 'g5', 'h1 h2', 'second']);
    // A group's process ran a module of the lane's under TMPDIR, gone with the lane.
    const entries = started().filter((s) => s.name === 'g1' || s.name === 'g3').map((s) => s.entry);
    for (const entry of entries) {
      assert.ok(entry.startsWith(path.join(dir, 'panopticon-lane-')), entry);
      assert.equal(fs.existsSync(entry), false, `${entry} removed`);
    }
    assert.equal(started().find((s) => s.name === 'g5')!.entry, grouped[4]);
  });

  it('exits 1 when a file fails in a group; the files after it in its process still run', () => {
    fs.rmSync(path.join(dir, 'started.log'), { force: true });
    const res = spawnSync(process.execPath, [LANE, '--reporter=tap', '--per-process=3', testFile('ok1', ''), testFile('bad', "throw new Error('boom');"), testFile('ok2', '')], { encoding: 'utf8', env });
    assert.equal(res.status, 1, res.stdout);
    assert.match(res.stdout, /^# pass 2$/m, res.stdout);
    assert.match(res.stdout, /^# fail 1$/m, res.stdout);
    assert.deepEqual(started().map((s) => s.name), ['ok1', 'bad', 'ok2']);
    assert.equal(new Set(started().map((s) => s.pid)).size, 1);
  });

  it('exits 1 when a test fails or a file cannot run', () => {
    for (const body of ["throw new Error('boom');", 'process.exit(3);']) {
      const res = spawnSync(process.execPath, [LANE, '--reporter=tap', testFile('failing', body), testFile('passing', '')], { encoding: 'utf8', env });
      assert.equal(res.status, 1, res.stdout);
      assert.match(res.stdout, /^# fail 1$/m, res.stdout);
    }
  });

  it('exits 1 when no test ran at all (as inside a test process)', () => {
    const res = spawnSync(process.execPath, [LANE, '--reporter=tap', testFile('never', '')], { encoding: 'utf8', env: { ...env, NODE_TEST_CONTEXT: 'child' } });
    assert.equal(res.status, 1);
    assert.match(res.stderr, /no test ran/);
  });

  it('interrupted, stops the running files, reports them cancelled and exits 1', async () => {
    fs.rmSync(path.join(dir, 'started.log'), { force: true });
    const lane = spawn(process.execPath, [LANE, '--reporter=tap', '--concurrency=2', testFile('long1', 'await new Promise((r) => setTimeout(r, 60_000));'), testFile('long2', 'await new Promise((r) => setTimeout(r, 60_000));')], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    lane.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => lane.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 10_000;
    while (started().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const children = started();
    assert.equal(children.length, 2, 'both files started');
    lane.kill('SIGTERM');
    assert.equal(await exited, 1);
    assert.match(out, /^# cancelled 2$/m, out);
    for (const child of children) assert.equal(alive(child.pid), false, `${child.name} (pid ${child.pid}) was stopped`);
  });
});
