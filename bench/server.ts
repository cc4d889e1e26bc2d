/**
 * The server under test for `npm run bench`, run as a child process of the load generator so the
 * two do not share an event loop.
 *
 *   node dist/bench/server.js <sqlite|postgres> <group-commit|per-request>
 *
 * Opens a fresh store (a temporary SQLite file or a fresh PostgreSQL schema), builds the real
 * server with the per-PAK rate limit out of the way, listens on 127.0.0.1:<ephemeral>, creates a
 * tenant over the HTTP API and prints one JSON line: { url, clientId, pak, pid, engine, mode }.
 *
 * Signals:
 *   SIGUSR2 - prints { "mark": true, hrtimeUs, stats } (the trace commits and rows so far, and
 *             the monotonic clock in microseconds, the clock V8's CPU profiles are stamped with).
 *   SIGTERM - closes the server (drains the writer), prints { "final": true, stats }, closes the
 *             store, drops the PostgreSQL schema / removes the SQLite file, and exits 0.
 */
import { buildServer } from '../src/http/server.js';
import { openStore } from '../src/store/index.js';
import { naiveTraceSink } from './naive-writer.js';
import { createTenant, freshLocation, TEST_AUDIT_KEY, testConfig, type Engine } from '../test/support/harness.js';

type Mode = 'group-commit' | 'per-request';

function parseArgs(): { engine: Engine; mode: Mode } {
  const engine = (process.argv[2] ?? 'sqlite') as Engine;
  const mode = (process.argv[3] ?? 'group-commit') as Mode;
  if (engine !== 'sqlite' && engine !== 'postgres') throw new Error(`unknown engine ${engine}`);
  if (mode !== 'group-commit' && mode !== 'per-request') throw new Error(`unknown mode ${mode}`);
  return { engine, mode };
}

function line(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const hrtimeUs = () => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<void> {
  const { engine, mode } = parseArgs();
  const { location, cleanup } = freshLocation(engine);
  const config = testConfig(location, { pakRateLimitPerSecond: 1_000_000_000, logLevel: 'silent' });
  const store = await openStore(location, { auditKey: TEST_AUDIT_KEY, pgPoolSize: config.pgPoolSize, commitBatch: config.commitBatchSize });
  // testConfig: the bench tenant's sign-up hashes at the test suites' scrypt cost; OWASP's would spend
  // 1.3 s of CPU per server start on two password hashes, outside anything the benchmark measures.
  const { app, services } = await buildServer(config, store, mode === 'per-request' ? { traceSink: naiveTraceSink(location, config.lockTimeoutMs) } : {});
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const tenant = await createTenant(url);
  // SQLite's commit worker merges the writer's batches into fewer transactions: count those.
  const stats = () => ({ ...(store.traces.commitStats ?? services.writer.stats) });

  process.on('SIGUSR2', () => line({ mark: true, hrtimeUs: hrtimeUs(), stats: stats() }));

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    app
      .close()
      .then(() => line({ final: true, stats: stats() }))
      .then(() => store.close())
      .then(() => cleanup())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        process.stderr.write(`bench server: shutdown failed: ${String(err)}\n`);
        void cleanup().finally(() => process.exit(1));
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  line({ url, clientId: tenant.clientId, pak: tenant.pak, pid: process.pid, engine, mode, hrtimeUs: hrtimeUs() });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
