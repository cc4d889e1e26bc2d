/**
 * Fault: a client sends a body the server refuses, with and without `Expect: 100-continue` (curl
 * adds it above 1 MB). The refusal (413, 401, 415) must reach the client as a complete response:
 * before a byte of the body is sent when the request says how large it is and expects a 100, and
 * after the rest of the body was read and dropped when it streams in (chunked, or without Expect),
 * so the connection is not reset under the client's feet. Nothing refused is stored.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LIMITS } from '../../src/traces/schema.js';
import { OTLP_LIMITS } from '../../src/otlp/routes.js';
import { createTenant, ENGINES, rawSql, startServer, tempDir, traceBody, type RunningServer, type Tenant } from '../support/harness.js';

interface CurlOutcome {
  status: number;
  uploaded: number;
  body: string;
}

const dir = tempDir('expect-continue');

/** A file of `bytes` bytes holding a JSON object (a trace padded with an attribute). */
function jsonFile(name: string, bytes: number, clientId: string, envelope: 'trace' | 'batch' = 'trace'): string {
  const file = path.join(dir, name);
  const head = envelope === 'trace'
    ? JSON.stringify(traceBody(clientId)).slice(0, -1) + ',"attributes":{"pad":"'
    : '{"traces":"';
  const tail = envelope === 'trace' ? '"}}' : '"}';
  fs.writeFileSync(file, head + 'x'.repeat(bytes - head.length - tail.length) + tail);
  assert.equal(fs.statSync(file).size, bytes);
  return file;
}

/** curl, as a user runs it: its own Expect logic, its own framing. */
function curl(url: string, file: string, headers: string[]): Promise<CurlOutcome> {
  const out = path.join(dir, `out-${crypto.randomUUID()}`);
  const args = ['-sS', '-o', out, '-w', '%{http_code} %{size_upload}', '-X', 'POST', url, '--data-binary', `@${file}`, '--max-time', '30'];
  for (const h of headers) args.push('-H', h);
  return new Promise((resolve, reject) => {
    execFile('curl', args, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr || err.message} (${stdout})`));
      const [status, uploaded] = stdout.trim().split(' ');
      const body = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
      fs.rmSync(out, { force: true });
      resolve({ status: Number(status), uploaded: Number(uploaded), body });
    });
  });
}

function errorCode(outcome: CurlOutcome): string | undefined {
  try {
    return JSON.parse(outcome.body).error?.code;
  } catch {
    return undefined;
  }
}

for (const engine of ENGINES) {
  describe(`Expect: 100-continue and refused bodies [${engine}]`, () => {
    let server: RunningServer;
    let tenant: Tenant;
    let files: Record<string, string>;

    before(async () => {
      server = await startServer(engine);
      tenant = await createTenant(server.url);
      files = {
        trace5mb: jsonFile(`trace5mb-${engine}.json`, 5 * 1024 * 1024, tenant.clientId),
        trace50mb: jsonFile(`trace50mb-${engine}.json`, 50 * 1024 * 1024, tenant.clientId),
        batch3mb: jsonFile(`batch3mb-${engine}.json`, 3 * 1024 * 1024, tenant.clientId, 'batch'),
        batch1_5mb: jsonFile(`batch1.5mb-${engine}.json`, 1.5 * 1024 * 1024, tenant.clientId, 'batch'),
        otlp: jsonFile(`otlp-${engine}.bin`, OTLP_LIMITS.bodyBytes + 1024, tenant.clientId),
      };
    });

    after(async () => {
      await server.close();
      for (const f of Object.values(files ?? {})) fs.rmSync(f, { force: true });
    });

    async function storedTraces(): Promise<number> {
      const sql = await rawSql(server.location);
      try {
        const rows = await sql.query('SELECT count(*) AS n FROM traces WHERE client_id = ?', [tenant.clientId]);
        return Number(rows[0]!.n);
      } finally {
        await sql.close();
      }
    }

    const auth = () => `Authorization: Bearer ${tenant.pak}`;
    const json = 'Content-Type: application/json';

    it('a 5 MB trace with Expect gets its 413 before a byte of the body is sent', async () => {
      for (let i = 0; i < 3; i++) {
        const outcome = await curl(`${server.url}/panopticon/trace`, files.trace5mb!, [auth(), json, 'Expect: 100-continue']);
        assert.equal(outcome.status, 413, outcome.body);
        assert.equal(outcome.uploaded, 0);
        assert.equal(errorCode(outcome), 'payload_too_large');
      }
    });

    it('a 5 MB trace without Expect gets its complete 413 too (the rest of the body is read and dropped)', async () => {
      for (let i = 0; i < 3; i++) {
        const outcome = await curl(`${server.url}/panopticon/trace`, files.trace5mb!, [auth(), json, 'Expect:']);
        assert.equal(outcome.status, 413, outcome.body);
        assert.equal(errorCode(outcome), 'payload_too_large');
      }
    });

    it('a 50 MB chunked trace (no length to refuse up front) gets 413, not a reset or a bare 100', async () => {
      for (const expect of ['Expect: 100-continue', 'Expect:']) {
        const outcome = await curl(`${server.url}/panopticon/trace`, files.trace50mb!, [auth(), json, 'Transfer-Encoding: chunked', expect]);
        assert.equal(outcome.status, 413, `${expect}: ${outcome.body}`);
        assert.equal(errorCode(outcome), 'payload_too_large');
      }
    });

    it('a batch over 2 MiB is refused before upload; one under it is invited (100) and validated', async () => {
      const tooLarge = await curl(`${server.url}/panopticon/traces`, files.batch3mb!, [auth(), json]);
      assert.equal(tooLarge.status, 413, tooLarge.body);
      assert.equal(tooLarge.uploaded, 0);
      assert.ok(fs.statSync(files.batch1_5mb!).size < LIMITS.batchBodyBytes);
      const accepted = await curl(`${server.url}/panopticon/traces`, files.batch1_5mb!, [auth(), json, 'Expect: 100-continue']);
      assert.equal(accepted.status, 400, accepted.body);
      assert.equal(accepted.uploaded, fs.statSync(files.batch1_5mb!).size, 'the whole body was sent after the 100');
      assert.equal(errorCode(accepted), 'validation_failed');
    });

    it('an OTLP export over its limit gets 413 before upload', async () => {
      const outcome = await curl(`${server.url}/v1/traces`, files.otlp!, [auth(), 'Content-Type: application/x-protobuf', 'Expect: 100-continue']);
      assert.equal(outcome.status, 413, outcome.body);
      assert.equal(outcome.uploaded, 0);
    });

    it('a bad key (401) or an unknown content type (415) is answered before the body is sent', async () => {
      const badKey = await curl(`${server.url}/panopticon/trace`, files.batch1_5mb!, ['Authorization: Bearer pano_pak_nope', json, 'Expect: 100-continue']);
      assert.equal(badKey.status, 401, badKey.body);
      assert.equal(badKey.uploaded, 0);
      const csv = await curl(`${server.url}/panopticon/traces`, files.batch1_5mb!, [auth(), 'Content-Type: text/csv', 'Expect: 100-continue']);
      assert.equal(csv.status, 415, csv.body);
      assert.equal(csv.uploaded, 0);
    });

    it('a kept-alive connection stays usable after a drained chunked 413, and nothing refused was stored', async () => {
      // A raw socket, so that what is tested is the server's framing, not a client's pooling policy.
      const target = new URL(server.url);
      const socket = net.connect(Number(target.port), target.hostname);
      let received = '';
      let closed = false;
      socket.on('data', (data: Buffer) => { received += data.toString('latin1'); });
      socket.on('close', () => { closed = true; });
      socket.on('error', () => {});
      try {
        const answer = async (what: string) => {
          const until = Date.now() + 10_000;
          while (!/\r\n\r\n[\s\S]*\}$/.test(received)) {
            if (closed || Date.now() > until) assert.fail(`no complete answer to ${what}: ${JSON.stringify(received.slice(0, 300))}`);
            await new Promise((r) => setTimeout(r, 10));
          }
          const text = received;
          received = '';
          return text;
        };
        socket.write(`POST /panopticon/trace HTTP/1.1\r\nHost: ${target.host}\r\nAuthorization: Bearer ${tenant.pak}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
        const chunk = Buffer.alloc(256 * 1024, 'x');
        for (let sent = 0; sent < 5 * 1024 * 1024; sent += chunk.length) {
          socket.write(`${chunk.length.toString(16)}\r\n`);
          await new Promise<void>((resolve) => socket.write(chunk, () => resolve()));
          socket.write('\r\n');
        }
        socket.write('0\r\n\r\n');
        const refused = await answer('the chunked 5 MB trace');
        assert.match(refused, /^HTTP\/1\.1 413 /);
        assert.doesNotMatch(refused, /connection: close/i);
        assert.match(refused, /payload_too_large/);

        const body = JSON.stringify(traceBody(tenant.clientId));
        socket.write(`POST /panopticon/trace HTTP/1.1\r\nHost: ${target.host}\r\nAuthorization: Bearer ${tenant.pak}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        const accepted = await answer('the next trace on the same connection');
        assert.match(accepted, /^HTTP\/1\.1 202 /);
      } finally {
        socket.destroy();
      }
      assert.equal(await storedTraces(), 1, 'only the one accepted trace is stored');
    });
  });
}
