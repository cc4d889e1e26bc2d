/**
 * `logi serve` / `npm start`: open the store, listen, print how to reach the service, and shut
 * down gracefully on SIGTERM/SIGINT: stop accepting, let in-flight requests finish (their commits
 * included), flush pending work, close the store, exit.
 */
import { loadServerConfig, ConfigError, OWASP_SCRYPT_N, type ServerConfig } from './config.js';
import { buildServer } from './http/server.js';
import { openStore } from './store/index.js';
import { AuditKey } from './crypto/audit-key.js';
import { loadServerKey } from './crypto/secret-box.js';

export async function serve(config: ServerConfig = loadServerConfig()): Promise<void> {
  const auditKey = AuditKey.fromServerKey(loadServerKey(config.secretKey, config.dataDir));
  const store = await openStore(config.database, { auditKey, pgPoolSize: config.pgPoolSize, lockTimeoutMs: config.lockTimeoutMs, webhookOutboxLimit: config.webhookOutboxLimit, commitBatch: config.commitBatchSize });
  const { app } = await buildServer(config, store);
  if (config.passwordScryptN < OWASP_SCRYPT_N) {
    app.log.warn({ passwordScryptN: config.passwordScryptN, recommended: OWASP_SCRYPT_N }, 'PANOPTICON_PASSWORD_SCRYPT_N is below OWASP\'s scrypt cost: new password hashes are cheaper to crack (meant for test suites)');
  }
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const where = config.database.engine === 'sqlite' ? `SQLite at ${config.database.file}` : 'PostgreSQL';
  process.stdout.write(
    `Panopticon listening on ${url} (store: ${where})\n` +
      `API reference: ${url}/openapi.json\n` +
      `Next: create the first operator account (it owns this install):\n` +
      `  LOGI_URL=${url} npx logi signup --email you@example.com --password 'a-long-password'\n`,
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    app
      .close()
      .then(() => store.close())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export function reportStartupError(err: unknown): never {
  const message = err instanceof ConfigError ? err.message : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  process.stderr.write(`panopticon: cannot start: ${message}\n`);
  process.exit(1);
}
