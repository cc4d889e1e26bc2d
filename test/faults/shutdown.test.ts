/**
 * SIGTERM under load, on `logi serve` child processes on both engines: requests the server already
 * took in get their answer, acked traces are committed, open keep-alive sockets do not hold the
 * process, and it exits 0.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, freshLocation, spawnServer, traceBody, type SpawnedServer, type Tenant } from '../support/harness.js';
import { startLoad, storedIds, waitFor } from '../support/load.js';

/** Resolves true once a new TCP connection to the port is refused: the server stopped listening. */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

for (const engine of ENGINES) {
  describe(`SIGTERM during load [${engine}]`, () => {
    const fresh = freshLocation(engine);
    let server: SpawnedServer;
    let tenant: Tenant;

    before(async () => {
      server = await spawnServer({ PANOPTICON_DB: fresh.dbValue });
      tenant = await createTenant(server.url);
    });
    after(async () => {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
      await server.exited;
      await fresh.cleanup();
    });

    it('answers every request it took in, commits every acked trace, and exits 0 promptly', async () => {
      const port = Number(new URL(server.url).port);

      // A request the server has read the headers of (it answered 100 Continue) whose body is still
      // on its way when SIGTERM arrives: the server must wait for it rather than cut it off.
      const slow = net.connect(port, '127.0.0.1');
      let slowReply = '';
      slow.setEncoding('utf8').on('data', (d: string) => (slowReply += d));
      const slowClosed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
      const slowBody = JSON.stringify(traceBody(tenant.clientId));
      const slowId = JSON.parse(slowBody).event_id as string;
      slow.write(
        `POST /panopticon/trace HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tenant.pak}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(slowBody)}\r\nExpect: 100-continue\r\n\r\n`,
      );
      await waitFor(() => slowReply.includes('100 Continue'), 10_000, '100 Continue');

      // An idle keep-alive connection: it must not keep the process alive after SIGTERM.
      const idle = net.connect(port, '127.0.0.1');
      let idleReply = '';
      idle.setEncoding('utf8').on('data', (d: string) => (idleReply += d));
      const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
      idle.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await waitFor(() => idleReply.includes('"status":"ok"'), 10_000, 'healthz on the idle connection');

      const load = startLoad(server.url, tenant);
      await waitFor(() => load.acked() >= 300, 20_000, '300 acknowledged traces');
      server.child.kill('SIGTERM');
      await waitFor(() => refusesConnections(port), 10_000, 'the listener to close');
      const outcomes = await load.stop();

      slow.write(slowBody);
      await slowClosed;
      assert.match(slowReply, /HTTP\/1\.1 202 Accepted/, 'the request that was mid-upload at SIGTERM is accepted');
      assert.match(slowReply, /connection: close/i, 'and told not to reuse the connection');
      await idleClosed;

      // The force-exit timer fires at 30 s with code 1, so 0 proves the drain finished on its own.
      assert.equal(await server.exited, 0, `exit code\n${server.output()}`);

      const answered = outcomes.filter((o) => o.status !== null);
      assert.ok(answered.length >= 300);
      for (const o of answered) assert.ok(o.status === 202 || o.status === 200, `status ${o.status}: ${o.body}`);
      const accepted = new Set(answered.filter((o) => o.status === 202).map((o) => o.eventId));
      accepted.add(slowId);
      const stored = await storedIds(fresh.location, tenant.clientId);
      // Every acked trace is stored, and nothing is stored that was not acked: a request the
      // server processed never lost its answer to the shutdown (a reset would show up here as a
      // stored id without a 202).
      assert.deepEqual([...stored].sort(), [...accepted].sort());
      for (const o of answered.filter((a) => a.status === 200)) assert.ok(stored.has(o.eventId), 'a duplicate refers to a stored trace');
    });
  });
}
