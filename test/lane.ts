/**
 * Runs test files with node:test's run() in the order given. `node --test a b c` sorts its files by
 * name, so the longest suites (the Python SDK's, the browser walk, the docs' examples) started in
 * the middle of the run or last, and the machine's second core idled through the tail; test/run.sh
 * lists them first. Prints what `node --test` prints: TAP, or spec on a terminal.
 *
 *   node dist/test/lane.js [--concurrency N] [--reporter spec|tap] file...
 */
import path from 'node:path';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1' },
    reporter: { type: 'string', default: process.stdout.isTTY ? 'spec' : 'tap' },
  },
  allowPositionals: true,
});
const concurrency = Number(values.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency: a whole number from 1 (got ${values.concurrency})`);
if (values.reporter !== 'spec' && values.reporter !== 'tap') throw new Error(`--reporter: spec or tap (got ${values.reporter})`);
if (positionals.length === 0) throw new Error('no test files given');

// Interrupted (Ctrl-C, test/run.sh or CI stopping it): the test files' processes are stopped too,
// as `node --test` does, rather than left running on their own.
const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.exitCode = 1;
    interrupted.abort();
  });
}

const stream = run({ files: positionals.map((file) => path.resolve(file)), concurrency, signal: interrupted.signal });
// A failed test, or a file that could not run at all: both arrive as test:fail.
stream.on('test:fail', () => {
  process.exitCode = 1;
});
// A run in which nothing ran (run() inside a test process runs no files, by design) is not a pass.
let passed = 0;
stream.on('test:pass', () => passed++);
process.on('exit', () => {
  if (passed === 0 && process.exitCode !== 1) {
    process.stderr.write('test/lane: no test ran\n');
    process.exitCode = 1;
  }
});
stream.compose(values.reporter === 'spec' ? new spec() : tap).pipe(process.stdout);
