/**
 * Requests Node's HTTP parser refuses before any route runs, and uploads the client abandons:
 * the first get the catalogue's error body (not Fastify's default), the second are not server
 * errors. Over raw sockets, so what is tested is the bytes on the wire.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createTenant, ENGINES, freshLocation, rawSql, spawnServer, type SpawnedServer, type Tenant } from '../support/harness.js';

/** Writes `request`, reads until the server closes the connection (or 5 s), returns what came back. */
function exchange(url: string, request: string): Promise<string> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(target.port), target.hostname);
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got ${JSON.stringify(received.slice(0, 200))}`));
    }, 5000);
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(request);
  });
}

function parse(response: string): { status: number; headers: Record<string, string>; body: any } {
  const [head, body] = response.split('\r\n\r\n', 2) as [string, string];
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(body) };
}

for (const engine of ENGINES) {
  describe(`malformed HTTP and abandoned uploads [${engine}]`, () => {
    const fresh = freshLocation(engine);
    let server: SpawnedServer;
    let tenant: Tenant;
    before(async () => {
      server = await spawnServer({ PANOPTICON_DB: fresh.dbValue, PANOPTICON_LOG_LEVEL: 'warn', PANOPTICON_SECRET_KEY: '07'.repeat(32) });
      tenant = await createTenant(server.url);
    });
    after(async () => {
      server.child.kill('SIGTERM');
      await server.exited;
      await fresh.cleanup();
    });

    const head = (extra: string) =>
      `POST /panopticon/trace HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tenant.pak}\r\nContent-Type: application/json\r\n${extra}\r\n`;

    it('a negative, non-numeric or doubled Content-Length, or broken chunking, is 400 malformed_http in the catalogue shape, and the connection closes', async () => {
      for (const [label, request] of [
        ['negative', head('Content-Length: -5\r\n') + '{}'],
        ['not a number', head('Content-Length: 12abc\r\n') + '{}'],
        ['two lengths', head('Content-Length: 2\r\nContent-Length: 3\r\n') + '{}'],
        ['length and chunked', head('Content-Length: 2\r\nTransfer-Encoding: chunked\r\n') + '2\r\n{}\r\n0\r\n\r\n'],
        ['bad chunk size', head('Transfer-Encoding: chunked\r\n') + 'zz\r\n{}\r\n0\r\n\r\n'],
      ] as const) {
        const answer = parse(await exchange(server.url, request));
        assert.equal(answer.status, 400, label);
        assert.equal(answer.body.error.code, 'malformed_http', label);
        assert.match(answer.body.error.request_id, /^req_[0-9a-f]+$/, label);
        assert.equal(answer.headers['x-request-id'], answer.body.error.request_id, label);
        assert.equal(answer.headers['connection'], 'close', label);
        assert.match(answer.headers['content-type']!, /^application\/json/, label);
      }
      const sql = await rawSql(fresh.location);
      try {
        assert.equal(Number((await sql.query('SELECT count(*) AS n FROM traces'))[0]!.n), 0, 'nothing stored');
      } finally {
        await sql.close();
      }
    });

    it('headers over the limit are 431 headers_too_large in the catalogue shape', async () => {
      const answer = parse(await exchange(server.url, head(`X-Padding: ${'a'.repeat(20_000)}\r\n`) + '{}'));
      assert.equal(answer.status, 431);
      assert.equal(answer.body.error.code, 'headers_too_large');
    });

    it('an upload the client abandons is not logged as a server error (no warning, no stack)', async () => {
      const before = server.output().length;
      const target = new URL(server.url);
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve) => {
          const socket = net.connect(Number(target.port), target.hostname, () => {
            socket.write(head('Content-Length: 5000\r\n') + '{"event_id":');
            setTimeout(() => {
              socket.destroy();
              resolve();
            }, 100);
          });
          socket.on('error', () => {});
        });
      }
      await new Promise((r) => setTimeout(r, 300));
      const logged = server.output().slice(before);
      assert.equal(logged, '', `logged at warn or above: ${logged.slice(0, 500)}`);
    });
  });
}
