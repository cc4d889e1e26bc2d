/**
 * Fault: SQLite on a small volume that fills up (a 20 MB tmpfs). While the disk is full every
 * write is a 503 and /healthz says so (with the reason) while /livez stays 200; the WAL stays a
 * small share of the volume, so the data reaches the main file and freeing a little space is
 * enough to take writes again, without a restart. No acknowledged trace is lost.
 *
 * Needs root (mount); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createTenant, http, rawSql, startServer, tempDir, traceBody } from '../support/harness.js';
import { countStatus, formatCounts, ingestWorks, timeUntil, type StatusCounts } from '../support/traffic.js';

const VOLUME_MB = 20;
const FILLER_MB = 4;
const BATCH = 200;

function mountSmallVolume(): string | null {
  const dir = tempDir('small-disk');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${VOLUME_MB}m`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

test('sqlite: a full small disk answers 503 with a reason, keeps the WAL bounded, and recovers when space is freed', async (t) => {
  const volume = process.getuid?.() === 0 ? mountSmallVolume() : null;
  if (volume === null) {
    t.skip('needs root to mount a small tmpfs');
    return;
  }
  const file = path.join(volume, 'panopticon.db');
  const filler = path.join(volume, 'filler');
  fs.writeFileSync(filler, Buffer.alloc(FILLER_MB * 1024 * 1024, 1));
  const server = await startServer('sqlite', { lockTimeoutMs: 1000 }, { engine: 'sqlite', file });
  try {
    const tenant = await createTenant(server.url);
    const statuses: StatusCounts = {};
    const acked = new Set<string>();
    let failuresInARow = 0;
    const until = Date.now() + 60_000;
    while (failuresInARow < 3 && Date.now() < until) {
      const traces = Array.from({ length: BATCH }, () => traceBody(tenant.clientId, { event_id: crypto.randomUUID(), error_message: 'x'.repeat(4000) }));
      const r = await http(server.url, 'POST', '/panopticon/traces', { token: tenant.pak, body: { traces } });
      countStatus(statuses, r.status);
      if (r.status === 200) {
        failuresInARow = 0;
        for (const item of r.body.results as Array<{ event_id: string; status: string }>) if (item.status === 'accepted') acked.add(item.event_id);
      } else {
        assert.equal(r.status, 503, r.text);
        assert.equal(r.body.error.code, 'store_unavailable');
        failuresInARow++;
      }
    }
    assert.equal(failuresInARow, 3, 'the volume filled up');

    const walBytes = fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
    const mainBytes = fs.statSync(file).size;
    assert.ok(walBytes < (VOLUME_MB * 1024 * 1024) / 4, `the WAL holds ${walBytes} bytes of a ${VOLUME_MB} MB volume`);
    assert.ok(mainBytes > walBytes, `the data reached the main file (${mainBytes} bytes; WAL ${walBytes})`);

    const health = await http(server.url, 'GET', '/healthz');
    assert.equal(health.status, 503, health.text);
    assert.equal(health.headers.get('retry-after'), '5');
    assert.match(health.body.error.reason, /full/i);
    assert.equal((await http(server.url, 'GET', '/livez')).status, 200);

    fs.rmSync(filler);
    const recoveryMs = await timeUntil(async () => (await http(server.url, 'GET', '/healthz')).status === 200 && (await ingestWorks(server.url, tenant)), 10_000);

    const sql = await rawSql(server.location);
    const stored = new Set((await sql.query('SELECT event_id FROM traces WHERE client_id = ?', [tenant.clientId])).map((r) => String(r.event_id)));
    await sql.close();
    const lost = [...acked].filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], 'no acknowledged trace is lost');

    t.diagnostic(`batches of ${BATCH}: ${formatCounts(statuses)}; ${acked.size} traces acked, ${lost.length} lost`);
    t.diagnostic(`when full: main file ${(mainBytes / 1e6).toFixed(1)} MB, WAL ${(walBytes / 1e6).toFixed(1)} MB; writes again ${recoveryMs.toFixed(0)} ms after ${FILLER_MB} MB were freed`);
  } finally {
    await server.close();
    execFileSync('umount', [volume]);
    fs.rmSync(volume, { recursive: true, force: true });
  }
});
