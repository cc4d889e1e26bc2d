/**
 * Runs test files with node:test's run() in the order given. `node --test a b c` sorts its files by
 * name, so the longest suites (the Python SDK's, the browser walk, the docs' examples) started in
 * the middle of the run or last, and the machine's second core idled through the tail; test/run.sh
 * lists them first. Prints what `node --test` prints: TAP, or spec on a terminal.
 *
 *   node dist/test/lane.js [--concurrency N] [--reporter spec|tap] [--per-process N] file...
 *
 * `--per-process N` applies to the files after it (up to the next --per-process, which starts a new
 * set even with the same N): they run N to a process, in the order given, instead of one each. Loading the server and the test
 * helpers costs a test process about 0.8 s of CPU before its first test, which for most unit, store
 * and HTTP files is more than their tests take. Files that share a process share its module
 * instances and its root hooks, so a file that may share one registers its hooks inside a
 * describe (test/unit/architecture.test.ts checks this); a file that ends its process ends the
 * others in it too, and the run fails as it would alone.
 */
import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values, tokens } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1' },
    reporter: { type: 'string', default: process.stdout.isTTY ? 'spec' : 'tap' },
    'per-process': { type: 'string', multiple: true },
  },
  allowPositionals: true,
  tokens: true,
});

function wholeNumber(option: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${option}: a whole number from 1 (got ${text})`);
  return n;
}

const concurrency = wholeNumber('concurrency', values.concurrency);
if (values.reporter !== 'spec' && values.reporter !== 'tap') throw new Error(`--reporter: spec or tap (got ${values.reporter})`);

/** The files in order, each with the --per-process set it is in and that set's N. */
const given: Array<{ file: string; set: number; perProcess: number }> = [];
let set = 0;
let perProcess = 1;
for (const token of tokens) {
  if (token.kind === 'option' && token.name === 'per-process') {
    set++;
    perProcess = wholeNumber('per-process', token.value);
  } else if (token.kind === 'positional') given.push({ file: path.resolve(token.value), set, perProcess });
}
if (given.length === 0) throw new Error('no test files given');

/**
 * One entry per process: a file on its own, or a module importing a group of files in order (their
 * tests register as each is evaluated, and run one file after another as they would apart).
 */
let groupDir: string | null = null;
function processEntries(): string[] {
  const entries: string[] = [];
  let i = 0;
  while (i < given.length) {
    const { set: groupSet, perProcess: size } = given[i]!;
    let end = i + 1;
    while (end < given.length && end - i < size && given[end]!.set === groupSet) end++;
    const files = given.slice(i, end).map((g) => g.file);
    i = end;
    if (files.length === 1) {
      entries.push(files[0]!);
      continue;
    }
    groupDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'panopticon-lane-'));
    const name = (file: string) => `${path.basename(path.dirname(file))}-${path.basename(file).replace(/\.test\.[cm]?js$/, '')}`;
    const entry = path.join(groupDir, `${entries.length + 1}.${name(files[0]!)}+${files.length - 1}.mjs`);
    fs.writeFileSync(entry, files.map((file) => `import ${JSON.stringify(pathToFileURL(file).href)};\n`).join(''));
    entries.push(entry);
  }
  return entries;
}

// Interrupted (Ctrl-C, test/run.sh or CI stopping it): the test files' processes are stopped too,
// as `node --test` does, rather than left running on their own.
const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.exitCode = 1;
    interrupted.abort();
  });
}

const entries = processEntries();
// run() listens on the signal once per file process: more than Node's default of 10 is expected here.
setMaxListeners(entries.length + 10, interrupted.signal);
const stream = run({ files: entries, concurrency, signal: interrupted.signal });
// A failed test, or a file that could not run at all: both arrive as test:fail.
stream.on('test:fail', () => {
  process.exitCode = 1;
});
// A run in which nothing ran (run() inside a test process runs no files, by design) is not a pass.
let passed = 0;
stream.on('test:pass', () => passed++);
process.on('exit', () => {
  if (groupDir !== null) fs.rmSync(groupDir, { recursive: true, force: true });
  if (passed === 0 && process.exitCode !== 1) {
    process.stderr.write('test/lane: no test ran\n');
    process.exitCode = 1;
  }
});
stream.compose(values.reporter === 'spec' ? new spec() : tap).pipe(process.stdout);
