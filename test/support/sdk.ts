/**
 * Test helpers for the SDK: a real loopback HTTP proxy in front of a real server, which can be told
 * to fail in the ways a network and a loaded server do (refuse, hang, 503/429 with Retry-After,
 * lose the acknowledgement after the server stored the batch); and row counts straight from the
 * store, to prove "exactly once".
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { rawSql, type RunningServer } from './harness.js';
import { eventually as waitFor } from './wait.js';
import type { StoreLocation } from '../../src/config.js';

export type ProxyMode =
  | { kind: 'forward' }
  | { kind: 'refuse' }
  | { kind: 'hang' }
  | { kind: 'status'; status: number; retryAfter?: string; times: number }
  | { kind: 'lose-ack'; times: number };

export interface SeenRequest {
  at: number;
  method: string;
  url: string;
  items: number;
  signature: string | undefined;
  answered: number | 'refused' | 'hung' | 'lost';
}

export class LoopbackProxy {
  readonly seen: SeenRequest[] = [];
  mode: ProxyMode = { kind: 'forward' };
  private server!: http.Server;
  private hung: http.ServerResponse[] = [];
  url = '';

  constructor(public upstream: string) {}

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Trace items of batch requests seen, in order, for requests that reached the server and were answered. */
  batchSizes(): number[] {
    return this.seen.filter((r) => r.url.startsWith('/panopticon/traces') && r.answered === 200).map((r) => r.items);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    let items = 0;
    try {
      items = (JSON.parse(body.toString()) as { traces?: unknown[] }).traces?.length ?? 0;
    } catch {
      /* not a batch */
    }
    const sig = req.headers['x-panopticon-signature'];
    const seen: SeenRequest = { at: Date.now(), method: req.method!, url: req.url!, items, signature: typeof sig === 'string' ? sig : undefined, answered: 'refused' };
    this.seen.push(seen);
    const mode = this.mode;
    if (mode.kind === 'refuse') {
      req.socket.destroy();
      return;
    }
    if (mode.kind === 'hang') {
      seen.answered = 'hung';
      this.hung.push(res);
      return;
    }
    if (mode.kind === 'status' && mode.times > 0) {
      mode.times--;
      seen.answered = mode.status;
      res.writeHead(mode.status, { 'content-type': 'application/json', ...(mode.retryAfter ? { 'retry-after': mode.retryAfter } : {}) });
      res.end(JSON.stringify({ error: { code: mode.status === 429 ? 'rate_limited' : 'store_unavailable', message: 'from the test proxy', request_id: 'req_proxy' } }));
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v;
    const upstream = await fetch(this.upstream + req.url, { method: req.method, headers, body: body.length > 0 ? body : undefined });
    const text = await upstream.text();
    if (mode.kind === 'lose-ack' && mode.times > 0) {
      // The server stored the batch; the client never hears so.
      mode.times--;
      seen.answered = 'lost';
      req.socket.destroy();
      return;
    }
    seen.answered = upstream.status;
    const out: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection' && k !== 'keep-alive') out[k] = v;
    });
    res.writeHead(upstream.status, out);
    res.end(text);
  }

  async close(): Promise<void> {
    for (const r of this.hung) r.socket?.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A loopback port with nothing listening on it (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** `eventually` with a longer ceiling: an SDK retries with backoff before a trace arrives. */
export function eventually<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  return waitFor(what, fn, timeoutMs);
}

/** How many stored rows each event_id has in the app, read from the database itself. */
export async function rowsPerEvent(location: StoreLocation, clientId: string): Promise<Map<string, number>> {
  const sql = await rawSql(location);
  try {
    const rows = await sql.query('SELECT event_id, COUNT(*) AS n FROM traces WHERE client_id = ? GROUP BY event_id', [clientId]);
    return new Map(rows.map((r) => [String(r.event_id), Number(r.n)]));
  } finally {
    await sql.close();
  }
}

export async function storedRows(server: RunningServer, clientId: string) {
  return rowsPerEvent(server.location, clientId);
}
