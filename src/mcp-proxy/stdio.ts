/**
 * The stdio MCP proxy: the MCP client launches it instead of the server; it launches the server as
 * a child and relays newline-delimited JSON-RPC both ways, byte for byte, except:
 *
 * - `tools/call` (client → server) waits for the governor (pinning, guard, approval). Refused: the
 *   proxy answers it with a tool error and the server never sees it. Admitted: the original line is
 *   forwarded; the response is relayed unchanged and traced. With a call timeout, a call past it is
 *   answered with a tool error, the server gets `notifications/cancelled`, and its late answer is
 *   dropped.
 * - the response to a client's `tools/list` is rewritten without the tools that are not approved
 *   (the only message whose content changes); server → client messages keep their order, so the
 *   messages after it wait for that rewrite.
 * - `notifications/cancelled` for a call still held by the governor is not forwarded (the server
 *   never saw the request); the call is dropped when its decision comes.
 * - the answer to `initialize` declares `tools.listChanged` when the server has tools: the proxy asks
 *   Panopticon about the tools it hides every few seconds, and when one may be shown now (an
 *   operator approved it) it sends the client `notifications/tools/list_changed`, so the client
 *   lists again and sees it without reconnecting.
 * - a call naming a tool never listed through the proxy makes the proxy list the server's tools
 *   itself first (ids `panopticon-proxy-<n>`; those responses are not relayed).
 * - a client line that is not JSON is answered with a JSON-RPC parse error and not forwarded, so a
 *   server with a laxer parser cannot be reached by a call the proxy could not read. A batch (JSON
 *   array) holding a tools/call or tools/list is relayed one message at a time; other batches as they are.
 *
 * Lifecycle: the child gets the proxy's environment without LOGI_PAK, LOGI_PAK_SECRET and
 * LOGI_TOKEN; the child's stderr is the proxy's stderr; the proxy's own log lines go to stderr too
 * (stdout is the protocol). Client EOF closes the child's stdin (then SIGTERM after 2 s, SIGKILL
 * after 2 s more); the child's exit ends the proxy with its exit code (128 + signal number).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { withoutCliSecrets } from '../cli-config.js';
import type { CallContext, CallTicket, Governor } from './governor.js';
import { toolError } from './governor.js';
import {
  declaringToolListChanges, errorResponse, idKey, INVALID_PARAMS, isNotification, isObject, isRequest, isResponse, LineSplitter, PARSE_ERROR, response,
  TOOL_LIST_CHANGED, type JsonRpcId, type JsonRpcRequest, type JsonRpcResponse,
} from './jsonrpc.js';

export interface StdioProxyOptions {
  command: string;
  args: readonly string[];
  governor: Governor;
  /** The scope, user and session every call is checked and traced with. */
  context: Omit<CallContext, 'requestId'>;
  /** A call the server has not answered after this long is answered with a tool error and cancelled; null: no limit. */
  callTimeoutMs: number | null;
  log: (message: string) => void;
  input?: Readable;
  output?: Writable;
  /** The server's environment. Default: this process's, without the CLI's secrets (LOGI_PAK, LOGI_PAK_SECRET, LOGI_TOKEN). */
  env?: NodeJS.ProcessEnv;
}

const GRACE_MS = 2000;
const OWN_REQUEST_TIMEOUT_MS = 10_000;
const MAX_LIST_PAGES = 100;

/** Writes lines in the order they were produced, where some (a rewritten tools/list answer) are produced later than the ones after them. */
class OrderedWriter {
  private readonly queue: Array<{ text: string | null; ready: boolean }> = [];
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly write: (text: string) => void) {}

  line(text: string): void {
    if (this.queue.length === 0) this.write(text + '\n');
    else this.queue.push({ text, ready: true });
  }

  /** A place in the order, filled later; null leaves it empty. */
  slot(): (text: string | null) => void {
    const s = { text: null as string | null, ready: false };
    this.queue.push(s);
    return (text) => {
      s.text = text;
      s.ready = true;
      while (this.queue.length > 0 && this.queue[0]!.ready) {
        const next = this.queue.shift()!;
        if (next.text !== null) this.write(next.text + '\n');
      }
      if (this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
  }

  idle(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

interface InFlight {
  ticket: CallTicket;
  timer: NodeJS.Timeout | null;
  /** Answered by the proxy already (timeout): the server's late answer is dropped. */
  answered: boolean;
}

/** What to do with one message from the server: relay it as received, drop it, or relay what the promise gives (null: nothing). */
type Disposition = { kind: 'raw' } | { kind: 'drop' } | { kind: 'replace'; value: Promise<unknown> };

export interface RunningStdioProxy {
  /** The exit code the proxy should end with: the child's, 128 + its signal number, or 127 if it could not start. */
  exited: Promise<number>;
  /** Passes a signal on to the child (SIGINT, SIGTERM received by the proxy). */
  signal(signal: NodeJS.Signals): void;
}

export function startStdioProxy(o: StdioProxyOptions): RunningStdioProxy {
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  const { governor, log } = o;

  const held = new Map<string, { cancelled: string | null }>();
  const inflight = new Map<string, InFlight>();
  const lists = new Set<string>();
  /** The id of the client's `initialize`, until the server answers it. */
  const inits = new Set<string>();
  /** The server has tools and the client was told the proxy announces changes to them. */
  let toolsAnnounced = false;
  const own = new Map<string, (answer: JsonRpcResponse | null) => void>();
  let ownSeq = 0;
  let initialized = false;
  let listing: Promise<void> | null = null;
  let serverGone = false;

  const child: ChildProcess = spawn(o.command, [...o.args], { stdio: ['pipe', 'pipe', 'inherit'], env: o.env ?? withoutCliSecrets() });
  const childIn = child.stdin!;
  const childOut = child.stdout!;

  const writer = new OrderedWriter((text) => {
    if (!output.write(text)) {
      childOut.pause();
      output.once('drain', () => childOut.resume());
    }
  });
  const toServer = (line: string) => {
    if (serverGone || childIn.destroyed) return;
    if (!childIn.write(line + '\n')) {
      input.pause();
      childIn.once('drain', () => input.resume());
    }
  };

  // --- server → client ---------------------------------------------------------------------------

  function dispose(m: unknown): Disposition {
    if (!isResponse(m) || m.id === null) return { kind: 'raw' };
    const key = idKey(m.id);
    const mine = own.get(key);
    if (mine !== undefined) {
      own.delete(key);
      mine(m);
      return { kind: 'drop' };
    }
    const call = inflight.get(key);
    if (call !== undefined) {
      inflight.delete(key);
      if (call.timer !== null) clearTimeout(call.timer);
      if (call.answered) return { kind: 'drop' };
      governor.finish(call.ticket, m.error !== undefined ? { kind: 'error', message: `${m.error.code}: ${m.error.message}` } : { kind: 'result', result: m.result });
      return { kind: 'raw' };
    }
    if (inits.delete(key)) {
      const { message, hasTools } = declaringToolListChanges(m);
      if (!hasTools) return { kind: 'raw' };
      toolsAnnounced = true;
      return { kind: 'replace', value: Promise.resolve(message) };
    }
    if (lists.delete(key)) {
      const result = m.result;
      if (!isObject(result) || !Array.isArray(result.tools)) return { kind: 'raw' };
      return {
        kind: 'replace',
        value: governor.filterTools(result.tools).then((tools) => ({ ...m, result: { ...result, tools } })),
      };
    }
    return { kind: 'raw' };
  }

  function onServerLine(line: string): void {
    if (inflight.size === 0 && lists.size === 0 && own.size === 0 && inits.size === 0) return writer.line(line);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return writer.line(line);
    }
    const fail = (err: unknown, fill: (t: string | null) => void) => {
      // A list the proxy could not filter is not relayed unfiltered.
      log(`could not filter tools/list: ${String(err)}`);
      fill(null);
    };
    if (Array.isArray(parsed)) {
      const each = parsed.map(dispose);
      if (each.every((d) => d.kind === 'raw')) return writer.line(line);
      const fill = writer.slot();
      Promise.all(each.map((d, i) => (d.kind === 'raw' ? parsed[i] : d.kind === 'drop' ? undefined : d.value)))
        .then((items) => {
          const kept = items.filter((x) => x !== undefined);
          fill(kept.length === 0 ? null : JSON.stringify(kept));
        })
        .catch((err: unknown) => fail(err, fill));
      return;
    }
    const d = dispose(parsed);
    if (d.kind === 'raw') return writer.line(line);
    if (d.kind === 'drop') return;
    const fill = writer.slot();
    d.value.then((v) => fill(JSON.stringify(v))).catch((err: unknown) => fail(err, fill));
  }

  // --- client → server ---------------------------------------------------------------------------

  function ownRequest(method: string, params: Record<string, unknown>): Promise<JsonRpcResponse | null> {
    const id = `panopticon-proxy-${++ownSeq}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        own.delete(idKey(id));
        resolve(null);
      }, OWN_REQUEST_TIMEOUT_MS);
      own.set(idKey(id), (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      toServer(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  /** Lists the server's tools through the governor (pins them), for a call naming a tool the client never listed. */
  function listFromServer(): Promise<void> {
    if (!initialized || serverGone) return Promise.resolve();
    listing ??= (async () => {
      let cursor: string | undefined;
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const answer = await ownRequest('tools/list', cursor === undefined ? {} : { cursor });
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

  function handleCall(m: JsonRpcRequest, raw: string): void {
    const name = m.params?.name;
    if (typeof name !== 'string' || name === '') {
      writer.line(errorResponse(m.id, INVALID_PARAMS, 'Invalid params: tools/call needs params.name (a string)'));
      return;
    }
    const key = idKey(m.id);
    const hold = { cancelled: null as string | null };
    held.set(key, hold);
    void (async () => {
      if (!governor.knows(name)) await listFromServer();
      const admission = await governor.admit(name, m.params?.arguments, { ...o.context, requestId: m.id });
      held.delete(key);
      if (!admission.run) {
        if (hold.cancelled === null) writer.line(response(m.id, admission.result));
        return;
      }
      if (hold.cancelled !== null) {
        governor.finish(admission.ticket, { kind: 'cancelled', reason: `${hold.cancelled} (before it was sent to the server)` });
        return;
      }
      if (serverGone) {
        governor.finish(admission.ticket, { kind: 'error', message: 'the server exited' });
        return;
      }
      const call: InFlight = { ticket: admission.ticket, timer: null, answered: false };
      if (o.callTimeoutMs !== null) {
        const ms = o.callTimeoutMs;
        call.timer = setTimeout(() => {
          call.answered = true;
          governor.finish(call.ticket, { kind: 'timeout', afterMs: ms });
          writer.line(response(m.id, toolError(`Tool ${name} timed out after ${ms} ms (Panopticon proxy); the server was asked to cancel it.`)));
          toServer(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: m.id, reason: `timed out after ${ms} ms in the Panopticon proxy` } }));
        }, ms);
      }
      inflight.set(key, call);
      toServer(raw);
    })().catch((err: unknown) => {
      held.delete(key);
      log(`tools/call ${name} failed in the proxy: ${String(err)}`);
      writer.line(response(m.id, toolError('Refused by Panopticon: the proxy failed while checking this call; it was not sent.')));
    });
  }

  function onClientMessage(m: unknown, raw: string): void {
    if (isRequest(m)) {
      if (m.method === 'tools/call') return handleCall(m, raw);
      if (m.method === 'tools/list') lists.add(idKey(m.id));
      if (m.method === 'initialize') inits.add(idKey(m.id));
    } else if (isNotification(m)) {
      if (m.method === 'notifications/initialized') initialized = true;
      if (m.method === 'notifications/cancelled' && isObject(m.params)) {
        const requestId = m.params.requestId as JsonRpcId;
        if (typeof requestId === 'string' || typeof requestId === 'number') {
          const key = idKey(requestId);
          const reason = typeof m.params.reason === 'string' ? m.params.reason : 'cancelled by the client';
          const hold = held.get(key);
          if (hold !== undefined) {
            hold.cancelled = reason;
            return;
          }
          const call = inflight.get(key);
          if (call !== undefined && !call.answered) {
            inflight.delete(key);
            if (call.timer !== null) clearTimeout(call.timer);
            governor.finish(call.ticket, { kind: 'cancelled', reason });
          }
        }
      }
    }
    toServer(raw);
  }

  const intercepted = (m: unknown) => isRequest(m) && (m.method === 'tools/call' || m.method === 'tools/list');

  function onClientLine(line: string): void {
    if (line.trim() === '') return toServer(line);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      log('a message from the client is not JSON: answered with a parse error, not relayed');
      return writer.line(errorResponse(null, PARSE_ERROR, 'Parse error: the Panopticon MCP proxy relays JSON-RPC messages only'));
    }
    if (Array.isArray(parsed)) {
      if (!parsed.some(intercepted)) return toServer(line);
      for (const m of parsed) onClientMessage(m, JSON.stringify(m));
      return;
    }
    onClientMessage(parsed, line);
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  const stopWatching = governor.watchHidden(() => {
    if (initialized && toolsAnnounced && !serverGone) writer.line(JSON.stringify(TOOL_LIST_CHANGED));
  });

  const fromClient = new LineSplitter(onClientLine);
  const fromServer = new LineSplitter(onServerLine);
  childOut.on('data', (chunk: Buffer) => fromServer.push(chunk));
  input.on('data', (chunk: Buffer) => fromClient.push(chunk));

  let killTimers: NodeJS.Timeout[] = [];
  const closeChild = () => {
    if (serverGone) return;
    childIn.end();
    killTimers = [
      setTimeout(() => child.kill('SIGTERM'), GRACE_MS),
      setTimeout(() => child.kill('SIGKILL'), 2 * GRACE_MS),
    ];
    for (const t of killTimers) t.unref();
  };
  input.on('end', () => {
    fromClient.end();
    closeChild();
  });
  // The client went away (stdout closed under us): as for EOF.
  output.on('error', (err: NodeJS.ErrnoException) => {
    log(`writing to the client failed (${err.code ?? err.message}); closing the server`);
    closeChild();
  });
  childIn.on('error', (err: NodeJS.ErrnoException) => log(`writing to the server failed: ${err.code ?? err.message}`));

  const exited = new Promise<number>((resolve) => {
    let startError: Error | null = null;
    child.on('error', (err) => {
      startError = err;
      log(`could not start ${o.command}: ${err.message}`);
      // A child that never started may not emit 'close'.
      if (child.pid === undefined) {
        serverGone = true;
        stopWatching();
        input.pause();
        resolve(127);
      }
    });
    child.on('close', (code, signal) => {
      serverGone = true;
      stopWatching();
      for (const t of killTimers) clearTimeout(t);
      fromServer.end();
      for (const [key, call] of inflight) {
        inflight.delete(key);
        if (call.timer !== null) clearTimeout(call.timer);
        if (!call.answered) governor.finish(call.ticket, { kind: 'error', message: 'the server exited before answering' });
      }
      for (const answer of own.values()) answer(null);
      input.pause();
      const status = startError !== null && code === null && signal === null ? 127 : code ?? 128 + (signal === null ? 0 : (osConstants.signals[signal] ?? 0));
      void writer.idle(5000).then(() => resolve(status));
    });
  });

  return {
    exited,
    signal(sig) {
      if (!serverGone) child.kill(sig);
    },
  };
}
