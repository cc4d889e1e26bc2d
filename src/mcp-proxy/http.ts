/**
 * The Streamable HTTP MCP proxy: the client connects to `--listen` instead of the remote server;
 * every request is relayed to the upstream as it came (method, path, query, headers including
 * Authorization, body) and every answer back as it came (status, headers including
 * WWW-Authenticate and Mcp-Session-Id, JSON or an SSE stream), except:
 *
 * - a POSTed `tools/call` is first decided by the governor (pinning, guard, approval). Refused: the
 *   proxy answers it itself (`200`, a JSON-RPC result with `isError: true`) and the upstream never
 *   sees it. Admitted: relayed; its answer (JSON, or the SSE event carrying it) is read on the way
 *   through, unchanged, for the trace.
 * - the answer to a POSTed `tools/list` is rewritten without the tools that are not approved (the
 *   JSON body, or the one SSE event that carries it; other events of the stream untouched).
 * - the answer to `initialize` declares `tools.listChanged` when the server has tools, and the
 *   client's GET event stream carries `notifications/tools/list_changed` of the proxy's own (between
 *   the server's events, never inside one) when a tool it hid may be shown now: the proxy asks
 *   Panopticon about the tools it hides every few seconds, so an approval reaches the client
 *   without a relist. Without a GET stream (a server that answers it 405), the client sees the
 *   tool at its next tools/list.
 * - a POST body that is not JSON is answered `400` with a JSON-RPC parse error; a batch holding a
 *   tools/call or tools/list is answered `400` (the current protocol has no batches); neither is relayed.
 *
 * The proxy never adds, removes or replaces credentials: the client's Authorization goes to the
 * upstream and nowhere else; the PAK goes only to Panopticon. Requests to other paths of the
 * upstream's origin (OAuth protected-resource metadata, for instance) are relayed as they are.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { CallTicket, Governor } from './governor.js';
import { declaringToolListChanges, errorResponse, INVALID_PARAMS, INVALID_REQUEST, isObject, isRequest, isResponse, PARSE_ERROR, response, TOOL_LIST_CHANGED, type JsonRpcId, type JsonRpcResponse } from './jsonrpc.js';
import { replaceData, SseSplitter } from './sse.js';

/** How the proxy derives a call's user_sub from the client's request. */
export type UserSubSource = { kind: 'jwt'; claim: string } | { kind: 'header'; name: string } | { kind: 'token-hash' };

export function parseUserSubSource(spec: string): UserSubSource | null {
  if (spec === 'token-hash') return { kind: 'token-hash' };
  const m = /^(jwt|header):(.+)$/.exec(spec);
  if (m === null) return null;
  return m[1] === 'jwt' ? { kind: 'jwt', claim: m[2]! } : { kind: 'header', name: m[2]!.toLowerCase() };
}

const bearer = (headers: http.IncomingHttpHeaders): string | null => {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  return m === null ? null : m[1]!;
};

/**
 * The user of a request, or null. `jwt:<claim>` reads the claim from the bearer token's payload
 * WITHOUT verifying its signature: attribution only; the upstream must validate the token (a
 * forged one is refused there, after the guard check).
 */
export function userSubOf(source: UserSubSource, headers: http.IncomingHttpHeaders): string | null {
  let value: unknown = null;
  if (source.kind === 'header') value = headers[source.name];
  else {
    const token = bearer(headers);
    if (token === null) return null;
    if (source.kind === 'token-hash') value = `sha256:${crypto.createHash('sha256').update(token).digest('hex').slice(0, 32)}`;
    else {
      const payload = token.split('.')[1];
      if (payload === undefined) return null;
      try {
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
        value = isObject(claims) ? claims[source.claim] : null;
      } catch {
        return null;
      }
    }
  }
  if (Array.isArray(value)) value = value[0];
  return typeof value === 'string' && value !== '' && !value.includes('\u0000') ? value.slice(0, 256) : null;
}

export interface HttpProxyOptions {
  upstream: URL;
  host: string;
  port: number;
  governor: Governor;
  scope: string;
  /** A fixed user for every call (--user-sub); null: none, or from `userSubFrom`. */
  userSub: string | null;
  userSubFrom: UserSubSource | null;
  log: (message: string) => void;
}

export interface RunningHttpProxy {
  /** `http://host:port` the proxy listens on; the MCP endpoint is at the upstream's path. */
  origin: string;
  endpoint: string;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const OWN_REQUEST_TIMEOUT_MS = 10_000;

function forwardHeaders(incoming: http.IncomingHttpHeaders, body: Buffer | null, readsAnswer: boolean): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  if (body !== null) out['content-length'] = body.length;
  else if (incoming['content-length'] !== undefined) out['content-length'] = incoming['content-length'];
  else if (incoming['transfer-encoding'] !== undefined) out['transfer-encoding'] = incoming['transfer-encoding'];
  // An answer the proxy reads must come as it is, not compressed.
  if (readsAnswer) out['accept-encoding'] = 'identity';
  return out;
}

function answerHeaders(incoming: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** What the relay does with the answer to the request it forwards. */
interface Watch {
  id: JsonRpcId;
  /** Rewrites the answer to `id` (tools/list); absent: it is only read (tools/call). */
  rewrite?: (m: JsonRpcResponse) => Promise<JsonRpcResponse>;
  /** The answer to `id` as it passed, or null when none came (HTTP error, connection lost). */
  answered: (m: JsonRpcResponse | null, why: string) => void;
}

const sameId = (m: unknown, id: JsonRpcId): m is JsonRpcResponse => isResponse(m) && m.id === id;

export async function startHttpProxy(o: HttpProxyOptions): Promise<RunningHttpProxy> {
  const { governor, log, upstream } = o;
  const transport = upstream.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true });
  let ownSeq = 0;
  let listing: Promise<void> | null = null;
  /** The clients' open GET event streams: where the proxy's own notifications go. */
  const streams = new Set<(event: string) => void>();
  const stopWatching = governor.watchHidden(() => {
    const event = `event: message\ndata: ${JSON.stringify(TOOL_LIST_CHANGED)}\n\n`;
    for (const send of streams) send(event);
  });

  const targetOf = (reqUrl: string): { url: URL; endpoint: boolean } => {
    const url = new URL(reqUrl, 'http://proxy.invalid');
    if (url.pathname === upstream.pathname) {
      const target = new URL(upstream.href);
      if (url.search !== '') target.search = url.search;
      return { url: target, endpoint: true };
    }
    return { url: new URL(url.pathname + url.search, upstream.origin), endpoint: false };
  };

  /**
   * Relays one request, and its answer; `watch` reads (or rewrites) the JSON-RPC answer to one id;
   * `announce`: the answer is the client's GET event stream, which the proxy's notifications join.
   */
  function relay(req: http.IncomingMessage, res: http.ServerResponse, target: URL, body: Buffer | null, watch: Watch | null, announce = false): void {
    let settled = false;
    const settle = (m: JsonRpcResponse | null, why: string) => {
      if (settled || watch === null) return;
      settled = true;
      watch.answered(m, why);
    };
    const up = transport.request(target, { method: req.method, headers: forwardHeaders(req.headers, body, watch !== null || announce), agent });
    up.on('error', (err) => {
      log(`upstream ${target.origin}: ${err.message}`);
      settle(null, `upstream unreachable: ${err.message}`);
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(errorResponse(watch?.id ?? null, -32603, `Panopticon MCP proxy: the upstream server could not be reached (${err.message})`));
      } else res.destroy();
    });
    // The client gave up (or the stream ended on its side): so does the upstream request.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
      settle(null, 'the client closed the connection before the answer');
    });
    if (body === null) req.pipe(up);
    else up.end(body);

    up.on('response', (answer) => {
      const status = answer.statusCode ?? 502;
      const headers = answerHeaders(answer.headers);
      const type = String(answer.headers['content-type'] ?? '').toLowerCase();
      if (announce && status === 200 && type.startsWith('text/event-stream')) {
        res.writeHead(status, headers);
        res.flushHeaders();
        // Whole events only: an event of the proxy's goes between two of the server's.
        const splitter = new SseSplitter((raw) => void res.write(raw));
        const send = (event: string) => void res.write(event);
        streams.add(send);
        answer.on('data', (c: Buffer) => splitter.push(c));
        answer.on('close', () => {
          streams.delete(send);
          const rest = splitter.end();
          if (rest !== '') res.write(rest);
          res.end();
        });
        res.on('close', () => streams.delete(send));
        return;
      }
      if (watch === null || !(type.startsWith('application/json') || type.startsWith('text/event-stream'))) {
        if (watch !== null) settle(null, `HTTP ${status} from the upstream`);
        res.writeHead(status, headers);
        answer.pipe(res);
        return;
      }
      if (type.startsWith('application/json')) {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const raw = Buffer.concat(chunks);
          void (async () => {
            let parsed: unknown = null;
            try {
              parsed = JSON.parse(raw.toString('utf8'));
            } catch {
              /* relayed as it is */
            }
            const list = Array.isArray(parsed) ? parsed : [parsed];
            const index = list.findIndex((m) => sameId(m, watch.id));
            if (index < 0 || watch.rewrite === undefined) {
              settle(index < 0 ? null : (list[index] as JsonRpcResponse), `HTTP ${status} without an answer`);
              res.writeHead(status, { ...headers, 'content-length': raw.length });
              res.end(raw);
              return;
            }
            list[index] = await watch.rewrite(list[index] as JsonRpcResponse);
            settle(list[index] as JsonRpcResponse, '');
            const out = Buffer.from(JSON.stringify(Array.isArray(parsed) ? list : list[0]));
            res.writeHead(status, { ...headers, 'content-length': out.length });
            res.end(out);
          })().catch((err: unknown) => {
            log(`could not read the upstream answer: ${String(err)}`);
            res.destroy();
          });
        });
        return;
      }
      // An SSE stream: events pass as they come; the one carrying the watched answer is read, or rewritten.
      res.writeHead(status, headers);
      res.flushHeaders();
      let order: Promise<void> = Promise.resolve();
      const splitter = new SseSplitter((raw, data) => {
        let message: unknown = null;
        if (data !== null && !settled) {
          try {
            message = JSON.parse(data);
          } catch {
            /* not JSON: relayed */
          }
        }
        if (!sameId(message, watch.id)) {
          order = order.then(() => void res.write(raw));
          return;
        }
        if (watch.rewrite === undefined) {
          settle(message, '');
          order = order.then(() => void res.write(raw));
          return;
        }
        const rewritten = watch.rewrite(message);
        order = order.then(async () => {
          const m = await rewritten;
          settle(m, '');
          res.write(replaceData(raw, JSON.stringify(m)));
        });
      });
      answer.on('data', (c: Buffer) => splitter.push(c));
      answer.on('end', () => {
        const rest = splitter.end();
        order = order.then(() => {
          if (rest !== '') res.write(rest);
          settle(null, 'the stream ended without the answer');
          res.end();
        });
        order.catch((err: unknown) => {
          log(`could not relay the upstream stream: ${String(err)}`);
          res.destroy();
        });
      });
    });
  }

  /** A request of the proxy's own to the upstream (tools/list), in the client's session and with its credentials. */
  function ownRequest(req: http.IncomingMessage, method: string, params: Record<string, unknown>): Promise<JsonRpcResponse | null> {
    const id = `panopticon-proxy-${++ownSeq}`;
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'accept-encoding': 'identity', 'content-length': body.length };
    for (const h of ['authorization', 'mcp-session-id', 'mcp-protocol-version']) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    return new Promise((resolve) => {
      const up = transport.request(upstream, { method: 'POST', headers, agent, timeout: OWN_REQUEST_TIMEOUT_MS });
      up.on('error', () => resolve(null));
      up.on('timeout', () => up.destroy(new Error('timeout')));
      up.on('response', (answer) => {
        const type = String(answer.headers['content-type'] ?? '');
        let found: JsonRpcResponse | null = null;
        const splitter = type.startsWith('text/event-stream')
          ? new SseSplitter((_raw, data) => {
              try {
                const m = data === null ? null : (JSON.parse(data) as unknown);
                if (sameId(m, id)) {
                  found = m;
                  answer.destroy();
                  resolve(found);
                }
              } catch {
                /* another event */
              }
            })
          : null;
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => (splitter === null ? chunks.push(c) : splitter.push(c)));
        answer.on('close', () => {
          if (splitter !== null) return resolve(found);
          try {
            const m = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
            resolve(sameId(m, id) ? m : null);
          } catch {
            resolve(null);
          }
        });
      });
      up.end(body);
    });
  }

  function listFromUpstream(req: http.IncomingMessage): Promise<void> {
    listing ??= (async () => {
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const answer = await ownRequest(req, 'tools/list', cursor === undefined ? {} : { cursor });
        const result = answer?.result;
        if (!isObject(result) || !Array.isArray(result.tools)) return;
        await governor.filterTools(result.tools);
        if (typeof result.nextCursor !== 'string') return;
        cursor = result.nextCursor;
      }
    })().finally(() => {
      listing = null;
    });
    return listing;
  }

  async function call(req: http.IncomingMessage, res: http.ServerResponse, target: URL, body: Buffer, id: JsonRpcId, params: Record<string, unknown> | undefined): Promise<void> {
    const name = params?.name;
    if (typeof name !== 'string' || name === '') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(errorResponse(id, INVALID_PARAMS, 'Invalid params: tools/call needs params.name (a string)'));
      return;
    }
    const session = req.headers['mcp-session-id'];
    const ctx = {
      scope: o.scope,
      userSub: o.userSub ?? (o.userSubFrom === null ? null : userSubOf(o.userSubFrom, req.headers)),
      sessionId: typeof session === 'string' ? session.slice(0, 256) : null,
      requestId: id,
    };
    if (!governor.knows(name)) await listFromUpstream(req);
    const admission = await governor.admit(name, params?.arguments, ctx);
    if (!admission.run) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(response(id, admission.result));
      return;
    }
    const ticket: CallTicket = admission.ticket;
    relay(req, res, target, body, {
      id,
      answered: (m, why) => governor.finish(ticket, m === null ? { kind: 'error', message: why }
        : m.error !== undefined ? { kind: 'error', message: `${m.error.code}: ${m.error.message}` } : { kind: 'result', result: m.result }),
    });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { url: target, endpoint } = targetOf(req.url ?? '/');
    if (endpoint && req.method === 'GET') return relay(req, res, target, null, null, true);
    if (!endpoint || req.method !== 'POST') return relay(req, res, target, null, null);
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === null) {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(errorResponse(null, INVALID_REQUEST, `Panopticon MCP proxy: a message larger than ${MAX_BODY_BYTES} bytes is not relayed`));
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(errorResponse(null, PARSE_ERROR, 'Parse error: the Panopticon MCP proxy relays JSON-RPC messages only'));
      return;
    }
    if (Array.isArray(parsed)) {
      if (parsed.some((m) => isRequest(m) && (m.method === 'tools/call' || m.method === 'tools/list'))) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(errorResponse(null, INVALID_REQUEST, 'Panopticon MCP proxy: a batch holding tools/call or tools/list is not relayed; send each message in its own request'));
        return;
      }
      return relay(req, res, target, body, null);
    }
    if (isRequest(parsed) && parsed.method === 'tools/call') return call(req, res, target, body, parsed.id, parsed.params);
    if (isRequest(parsed) && parsed.method === 'initialize') {
      return relay(req, res, target, body, { id: parsed.id, rewrite: async (m) => declaringToolListChanges(m).message, answered: () => {} });
    }
    if (isRequest(parsed) && parsed.method === 'tools/list') {
      return relay(req, res, target, body, {
        id: parsed.id,
        rewrite: async (m) => {
          const result = m.result;
          if (!isObject(result) || !Array.isArray(result.tools)) return m;
          return { ...m, result: { ...result, tools: await governor.filterTools(result.tools) } };
        },
        answered: () => {},
      });
    }
    return relay(req, res, target, body, null);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`request failed in the proxy: ${String(err)}`);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(errorResponse(null, -32603, 'Panopticon MCP proxy: internal error'));
      } else res.destroy();
    });
  });
  // Streams (GET SSE, long tool calls) may stay open as long as the upstream keeps them.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = `http://${host}:${address.port}`;
  return {
    origin,
    endpoint: origin + upstream.pathname,
    async close() {
      stopWatching();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
