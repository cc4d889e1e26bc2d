/**
 * The Panopticon client: trace delivery that never gets in the caller's way, and the AI Guard.
 *
 * Delivery guarantees (sdk/README.md states them for users):
 *   - `trace()` returns at once and never throws; the trace joins a bounded in-memory buffer.
 *   - A batch (`POST /panopticon/traces`) leaves when the buffer holds `batchSize` traces or every
 *     `flushIntervalMs`. One batch is in flight at a time, so the order of first delivery is the
 *     order of `trace()` calls.
 *   - A transient failure (network, timeout, 429, 5xx, and 401/403, which an operator can fix by
 *     re-enabling the app or rotating the key) puts the batch back at the head of the buffer and
 *     waits: exponential backoff with jitter, and never less than the server's Retry-After. The
 *     same event_ids are resent, so a batch whose acknowledgement was lost is stored once.
 *   - Only three things drop a trace, each counted: the buffer overflowing (oldest first), the
 *     server refusing it as invalid, and shutdown's deadline passing without a spool.
 *   - With `spoolPath`, every buffered trace is also in an append-only file until acknowledged, and
 *     a new client on the same file resends what the previous process left.
 */
import { signatureHeader } from './sign.js';
import { Spool } from './spool.js';
import { uuidv7 } from './uuid.js';
import type { ApprovalResult, CheckInput, GuardDecision, Stats, ToolDefinition, ToolReport, TraceInput, TraceStatus, WireTrace } from './types.js';

export interface PanopticonOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The application's key, `pano_pak_…`. */
  pak: string;
  /** The application's `client_id`, `logi_…`. */
  clientId: string;
  /** The application's `pak_secret` when it enforces HMAC signing: every request is then signed. */
  pakSecret?: string;
  /** Traces per batch, 1–1000. Default 100. */
  batchSize?: number;
  /** A partial batch leaves after this long. Default 1000 ms. */
  flushIntervalMs?: number;
  /**
   * Most traces waiting in memory, besides the batch in flight; beyond it the oldest are dropped
   * (and counted). Default 10 000.
   */
  maxBufferSize?: number;
  /** First retry delay; doubles per consecutive failure, with jitter. Default 250 ms. */
  retryInitialDelayMs?: number;
  /** Ceiling of the retry delay (a longer Retry-After still wins). Default 30 000 ms. */
  retryMaxDelayMs?: number;
  /** Timeout of one trace request. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** A file that keeps unacknowledged traces across restarts. Default: none (memory only). */
  spoolPath?: string;
  /** The spool file is compacted when it grows past this. Default 16 MiB. */
  maxSpoolBytes?: number;
  /**
   * What `check()` answers when the guard cannot be asked (network error, timeout, 429, 5xx):
   * `closed` (default) denies, `open` allows. Waiting for an approval always fails closed.
   */
  failMode?: 'open' | 'closed';
  /** Timeout of one guard check. Default 5000 ms. */
  checkTimeoutMs?: number;
  /** Told about failures the caller never sees (delivery errors, drops). Default: ignore. */
  onError?: (err: PanopticonError) => void;
}

export class PanopticonError extends Error {
  override name = 'PanopticonError';
  constructor(
    message: string,
    /** The server's error code, or `network`, `timeout`, `overflow`, `spool`, `invalid_trace`. */
    readonly code: string,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

/** The largest batch body we build; the server refuses more than 2 MiB. */
const MAX_BATCH_BYTES = 2 * 1024 * 1024 - 64 * 1024;
const STATUSES: readonly TraceStatus[] = ['ok', 'error', 'denied', 'timeout'];
const TRANSIENT_STATUSES = new Set([401, 403, 408, 425, 429, 500, 502, 503, 504]);

interface HttpAnswer {
  status: number;
  headers: Headers;
  body: any;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Seconds or an HTTP date; null when absent or unreadable. */
function retryAfterMs(headers: Headers): number | null {
  const value = headers.get('retry-after');
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

function isoOf(value: Date | string | undefined): string {
  if (value === undefined) return new Date().toISOString();
  return typeof value === 'string' ? value : value.toISOString();
}

export class Panopticon {
  readonly clientId: string;
  private readonly base: string;
  private readonly o: Required<Omit<PanopticonOptions, 'pakSecret' | 'spoolPath' | 'onError'>> & Pick<PanopticonOptions, 'pakSecret' | 'spoolPath'>;
  private readonly reportError: (err: PanopticonError) => void;

  /** Waiting to be sent, oldest first. */
  private queue: WireTrace[] = [];
  /** The batch being sent. */
  private inFlight: WireTrace[] = [];
  /** Traces whose last send failed transiently: their next send counts as a retry. */
  private failed = new Set<string>();
  private counters = { sent: 0, duplicate: 0, retried: 0, droppedOverflow: 0, droppedRejected: 0, droppedShutdown: 0, failedRequests: 0 };

  private pumping = false;
  private consecutiveFailures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly interval: NodeJS.Timeout;
  /** Shrinks after a 413 so an oversized batch is split. */
  private batchLimit: number;
  private closed = false;
  private readonly abort = new AbortController();
  private idleWaiters: Array<() => void> = [];
  private readonly spool: Spool | null;

  constructor(options: PanopticonOptions) {
    if (!/^https?:\/\//.test(options.url)) throw new TypeError('url must be an http(s) URL');
    if (typeof options.pak !== 'string' || options.pak === '') throw new TypeError('pak is required');
    if (typeof options.clientId !== 'string' || options.clientId === '') throw new TypeError('clientId is required');
    this.base = options.url.replace(/\/+$/, '');
    this.clientId = options.clientId;
    this.o = {
      url: this.base,
      pak: options.pak,
      clientId: options.clientId,
      pakSecret: options.pakSecret,
      batchSize: Math.min(1000, Math.max(1, options.batchSize ?? 100)),
      flushIntervalMs: Math.max(1, options.flushIntervalMs ?? 1000),
      maxBufferSize: Math.max(1, options.maxBufferSize ?? 10_000),
      retryInitialDelayMs: Math.max(1, options.retryInitialDelayMs ?? 250),
      retryMaxDelayMs: Math.max(1, options.retryMaxDelayMs ?? 30_000),
      requestTimeoutMs: Math.max(1, options.requestTimeoutMs ?? 10_000),
      spoolPath: options.spoolPath,
      maxSpoolBytes: Math.max(1024, options.maxSpoolBytes ?? 16 * 1024 * 1024),
      failMode: options.failMode ?? 'closed',
      checkTimeoutMs: Math.max(1, options.checkTimeoutMs ?? 5000),
    };
    this.batchLimit = this.o.batchSize;
    const onError = options.onError;
    this.reportError = (err) => {
      try {
        onError?.(err);
      } catch {
        // A throwing callback must not break delivery.
      }
    };

    this.spool = this.o.spoolPath === undefined
      ? null
      : new Spool(this.o.spoolPath, this.o.maxSpoolBytes, () => [...this.inFlight, ...this.queue], (err) =>
          this.reportError(new PanopticonError(`spool write failed: ${String(err)}`, 'spool')));
    if (this.spool !== null) {
      const { pending, corrupt } = this.spool.load();
      if (corrupt > 0) this.reportError(new PanopticonError(`${corrupt} unreadable spool line(s) skipped`, 'spool'));
      for (const t of pending) this.enqueue(t, false);
    }

    this.interval = setInterval(() => this.kick(), this.o.flushIntervalMs);
    // Delivery must never keep the application's process alive on its own.
    this.interval.unref();
    if (this.queue.length > 0) setImmediate(() => this.kick());
  }

  /**
   * Records a tool call. Returns its event_id at once (null when the input is unusable, which is
   * counted as rejected and reported to onError); never throws, never waits for the network.
   */
  trace(input: TraceInput): string | null {
    try {
      if (this.closed) {
        this.counters.droppedShutdown++;
        this.reportError(new PanopticonError('trace() after shutdown(): dropped', 'closed'));
        return null;
      }
      const problem = this.invalid(input);
      if (problem !== null) {
        this.counters.droppedRejected++;
        this.reportError(new PanopticonError(`trace dropped: ${problem}`, 'invalid_trace'));
        return null;
      }
      const wire: WireTrace = {
        event_id: input.eventId ?? uuidv7(),
        client_id: this.clientId,
        tool: input.tool,
        scope_used: input.scope,
        status: input.status,
        started_at: isoOf(input.startedAt),
        duration_ms: Math.max(0, Math.round(input.durationMs ?? 0)),
      };
      if (input.userSub != null) wire.user_sub = input.userSub;
      if (input.sessionId != null) wire.session_id = input.sessionId;
      if (input.errorMessage != null) wire.error_message = input.errorMessage.slice(0, 4096);
      if (input.attributes != null) wire.attributes = input.attributes;
      if (input.checkId != null) wire.check_id = input.checkId;
      this.enqueue(wire, true);
      if (this.queue.length >= this.o.batchSize) this.kick();
      return wire.event_id;
    } catch (err) {
      this.counters.droppedRejected++;
      this.reportError(new PanopticonError(`trace dropped: ${String(err)}`, 'invalid_trace'));
      return null;
    }
  }

  stats(): Stats {
    const c = this.counters;
    return {
      buffered: this.queue.length + this.inFlight.length,
      sent: c.sent,
      duplicate: c.duplicate,
      retried: c.retried,
      dropped: c.droppedOverflow + c.droppedRejected + c.droppedShutdown,
      droppedOverflow: c.droppedOverflow,
      droppedRejected: c.droppedRejected,
      droppedShutdown: c.droppedShutdown,
      failedRequests: c.failedRequests,
    };
  }

  /**
   * Sends everything buffered now, without waiting for the interval (still honouring a backoff in
   * progress). Resolves true once the buffer is empty, false if `timeoutMs` passed first.
   */
  async flush(options: { timeoutMs?: number } = {}): Promise<boolean> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (this.buffered() === 0) {
      await this.spool?.drain();
      return true;
    }
    const idle = new Promise<true>((resolve) => this.idleWaiters.push(() => resolve(true)));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    this.kick();
    const done = await Promise.race([idle, deadline]);
    clearTimeout(timer);
    await this.spool?.drain();
    return done;
  }

  /**
   * Flushes for at most `timeoutMs` (default 5000), then stops. Traces still unsent then stay in
   * the spool for the next process when there is one, and are counted as `droppedShutdown`
   * otherwise. Later `trace()` calls are dropped (and counted).
   */
  async shutdown(options: { timeoutMs?: number } = {}): Promise<{ delivered: boolean; pending: number }> {
    if (this.closed) return { delivered: this.buffered() === 0, pending: this.buffered() };
    const delivered = await this.flush({ timeoutMs: options.timeoutMs ?? 5000 });
    this.closed = true;
    clearInterval(this.interval);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.abort.abort();
    // Let an aborted send put its batch back before counting what is left.
    while (this.pumping) await sleep(5);
    const pending = this.buffered();
    if (pending > 0 && this.spool === null) this.counters.droppedShutdown += pending;
    await this.spool?.drain();
    return { delivered, pending };
  }

  // --- AI Guard --------------------------------------------------------------------------------

  /** Asks the guard whether a call may run. Never throws: when it cannot ask, applies `failMode`. */
  async check(input: CheckInput): Promise<GuardDecision> {
    const body: Record<string, unknown> = { client_id: this.clientId, tool: input.tool, scope: input.scope };
    if (input.userSub != null) body.user_sub = input.userSub;
    if (input.sessionId != null) body.session_id = input.sessionId;
    if (input.arguments != null) body.arguments = input.arguments;
    if (input.eventId !== undefined) body.event_id = input.eventId;
    const headers: Record<string, string> = input.idempotencyKey !== undefined ? { 'idempotency-key': input.idempotencyKey } : {};
    let answer: HttpAnswer;
    try {
      answer = await this.request('POST', '/panopticon/guard/check', JSON.stringify(body), this.o.checkTimeoutMs, undefined, headers);
    } catch (err) {
      return this.unreachable(err instanceof PanopticonError ? err.code : 'network', String(err));
    }
    if (answer.status === 200 && answer.body !== null && typeof answer.body === 'object') {
      const b = answer.body as Record<string, any>;
      return {
        decision: b.decision,
        reason: String(b.reason ?? ''),
        message: String(b.message ?? ''),
        source: 'server',
        checkId: b.check_id ?? null,
        ruleId: b.rule_id ?? null,
        approval: b.approval ?? null,
        ...(typeof b.retry_after_seconds === 'number' ? { retryAfterSeconds: b.retry_after_seconds } : {}),
      };
    }
    const code = errorCode(answer);
    if (answer.status === 429 || answer.status >= 500) return this.unreachable(code, `guard answered ${answer.status}`);
    // A refused key or a malformed check is a configuration problem, not an outage: deny whatever
    // the fail mode, so a revoked key cannot switch the guard off.
    return {
      decision: 'deny', reason: code, message: errorMessage(answer) ?? `guard check refused (${answer.status})`,
      source: 'fail_closed', checkId: null, ruleId: null, approval: null,
    };
  }

  /**
   * Long-polls an approval until it is decided, expires, or `timeoutMs` (default 5 minutes) passes.
   * Network failures are retried until the deadline; only `approved` means run the call.
   */
  async waitForApproval(approval: string | { id: string }, options: { timeoutMs?: number } = {}): Promise<ApprovalResult> {
    const id = typeof approval === 'string' ? approval : approval.id;
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    let last: Record<string, unknown> | null = null;
    let failures = 0;
    let lastError = '';
    for (;;) {
      const remaining = deadline - Date.now();
      const wait = Math.max(0, Math.min(30, Math.floor(remaining / 1000)));
      try {
        const answer = await this.request('GET', `/panopticon/approvals/${encodeURIComponent(id)}?wait=${wait}`, '', wait * 1000 + this.o.requestTimeoutMs);
        if (answer.status === 200) {
          failures = 0;
          last = answer.body as Record<string, unknown>;
          const status = last.status;
          if (status === 'approved' || status === 'denied' || status === 'expired') {
            return { status, approved: status === 'approved', approval: last };
          }
        } else if (answer.status === 429 || answer.status >= 500) {
          lastError = errorCode(answer);
          failures++;
          await sleep(Math.min(Math.max(0, deadline - Date.now()), Math.max(retryAfterMs(answer.headers) ?? 0, this.backoff(failures))));
        } else {
          return { status: 'error', approved: false, approval: last, error: errorCode(answer) };
        }
      } catch (err) {
        lastError = err instanceof PanopticonError ? err.code : 'network';
        failures++;
        await sleep(Math.min(Math.max(0, deadline - Date.now()), this.backoff(failures)));
      }
      if (Date.now() >= deadline) {
        return failures > 0
          ? { status: 'unreachable', approved: false, approval: last, error: lastError }
          : { status: 'pending', approved: false, approval: last };
      }
    }
  }

  // --- MCP tool pinning --------------------------------------------------------------------------

  /**
   * Reports the tools an MCP server listed (`POST /panopticon/tools`, at most 500 per call) and
   * answers, per tool, whether its definition is approved (pinned) or quarantined. Never throws;
   * bounded by `checkTimeoutMs`.
   */
  async reportTools(tools: readonly ToolDefinition[]): Promise<ToolReport> {
    let answer: HttpAnswer;
    try {
      answer = await this.request('POST', '/panopticon/tools', JSON.stringify({ client_id: this.clientId, tools }), this.o.checkTimeoutMs);
    } catch (err) {
      return { ok: false, unreachable: true, code: err instanceof PanopticonError ? err.code : 'network', message: String((err as Error).message ?? err) };
    }
    if (answer.status === 200 && Array.isArray(answer.body?.tools)) {
      const b = answer.body as { new_tools: 'allow' | 'require_approval'; tools: Array<{ name: string; hash: string; status: 'approved' | 'pending' | 'rejected'; definition_id: string | null; pinned_hash: string | null }> };
      return { ok: true, newTools: b.new_tools, tools: b.tools.map((t) => ({ name: t.name, hash: t.hash, status: t.status, definitionId: t.definition_id, pinnedHash: t.pinned_hash })) };
    }
    return {
      ok: false,
      unreachable: answer.status === 429 || answer.status >= 500,
      code: errorCode(answer),
      message: errorMessage(answer) ?? `tool report refused (${answer.status})`,
    };
  }

  // --- delivery internals ----------------------------------------------------------------------

  private buffered(): number {
    return this.queue.length + this.inFlight.length;
  }

  private invalid(input: TraceInput): string | null {
    if (input === null || typeof input !== 'object') return 'not an object';
    if (typeof input.tool !== 'string' || input.tool === '') return 'tool must be a non-empty string';
    if (typeof input.scope !== 'string' || input.scope === '') return 'scope must be a non-empty string';
    if (!STATUSES.includes(input.status)) return `status must be one of ${STATUSES.join(', ')}`;
    return null;
  }

  private enqueue(trace: WireTrace, persist: boolean): void {
    this.queue.push(trace);
    if (persist) this.spool?.add(trace);
    this.enforceBound();
  }

  /** Oldest first. The batch in flight is not counted: its outcome is about to be known. */
  private enforceBound(): void {
    const over = this.queue.length - this.o.maxBufferSize;
    if (over > 0) {
      const dropped = this.queue.splice(0, over);
      this.counters.droppedOverflow += dropped.length;
      for (const t of dropped) this.failed.delete(t.event_id);
      this.spool?.done(dropped.map((t) => t.event_id));
      this.reportError(new PanopticonError(`buffer full (${this.o.maxBufferSize}): dropped ${dropped.length} oldest trace(s)`, 'overflow'));
    }
  }

  /** Starts sending if there is something to send and no backoff is running. */
  private kick(): void {
    if (this.pumping || this.queue.length === 0) return;
    if (Date.now() < this.retryAt) return; // the retry timer will kick
    void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.abort.signal.aborted) {
        const batch = this.takeBatch();
        const ok = await this.sendBatch(batch);
        if (!ok) break;
      }
    } finally {
      this.pumping = false;
    }
    if (this.buffered() === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private takeBatch(): WireTrace[] {
    let bytes = 16;
    let n = 0;
    while (n < this.queue.length && n < this.batchLimit) {
      const size = Buffer.byteLength(JSON.stringify(this.queue[n])) + 1;
      if (n > 0 && bytes + size > MAX_BATCH_BYTES) break;
      bytes += size;
      n++;
    }
    this.inFlight = this.queue.splice(0, n);
    return this.inFlight;
  }

  /** True when the batch is settled (acknowledged or refused for good); false to stop and back off. */
  private async sendBatch(batch: WireTrace[]): Promise<boolean> {
    for (const t of batch) if (this.failed.has(t.event_id)) this.counters.retried++;
    let answer: HttpAnswer;
    try {
      answer = await this.request('POST', '/panopticon/traces', JSON.stringify({ traces: batch }), this.o.requestTimeoutMs, this.abort.signal);
    } catch (err) {
      return this.transientFailure(batch, null, err instanceof PanopticonError ? err : new PanopticonError(String(err), 'network'));
    }
    if ((answer.status === 200 || answer.status === 207) && Array.isArray(answer.body?.results)) {
      const results = answer.body.results as Array<{ status: string; error?: { code?: string; message?: string } }>;
      const done: string[] = [];
      batch.forEach((t, i) => {
        const r = results[i];
        done.push(t.event_id);
        this.failed.delete(t.event_id);
        if (r?.status === 'accepted') this.counters.sent++;
        else if (r?.status === 'duplicate') {
          this.counters.sent++;
          this.counters.duplicate++;
        } else {
          this.counters.droppedRejected++;
          this.reportError(new PanopticonError(`trace ${t.event_id} rejected: ${r?.error?.code ?? 'unknown'} ${r?.error?.message ?? ''}`.trim(), r?.error?.code ?? 'rejected', answer.status));
        }
      });
      this.settle(done);
      this.batchLimit = this.o.batchSize;
      return true;
    }
    if (TRANSIENT_STATUSES.has(answer.status)) {
      return this.transientFailure(batch, retryAfterMs(answer.headers), new PanopticonError(`trace batch failed: ${answer.status} ${errorCode(answer)}`, errorCode(answer), answer.status));
    }
    if (answer.status === 413 && batch.length > 1) {
      // Too big for the server: put it back and send it in halves.
      this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
      this.queue.unshift(...batch);
      this.inFlight = [];
      return true;
    }
    // 400 / 413 / 415: the batch itself is refused, and sending it again cannot change that.
    this.counters.droppedRejected += batch.length;
    for (const t of batch) this.failed.delete(t.event_id);
    this.reportError(new PanopticonError(`trace batch of ${batch.length} refused: ${answer.status} ${errorCode(answer)}`, errorCode(answer), answer.status));
    this.settle(batch.map((t) => t.event_id));
    return true;
  }

  private settle(eventIds: string[]): void {
    this.inFlight = [];
    this.consecutiveFailures = 0;
    this.spool?.done(eventIds);
  }

  private transientFailure(batch: WireTrace[], retryAfter: number | null, err: PanopticonError): false {
    this.counters.failedRequests++;
    for (const t of batch) this.failed.add(t.event_id);
    // Back at the head, in their original order: the order is kept, and if the buffer filled up
    // meanwhile, these oldest traces are the first to go.
    this.queue.unshift(...batch);
    this.inFlight = [];
    this.enforceBound();
    if (this.abort.signal.aborted) return false;
    this.consecutiveFailures++;
    const delay = Math.max(retryAfter ?? 0, this.backoff(this.consecutiveFailures));
    this.retryAt = Date.now() + delay;
    this.reportError(err);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryAt = 0;
      this.kick();
    }, delay);
    this.retryTimer.unref();
    return false;
  }

  /** Exponential, capped, with "equal jitter": half fixed, half random, so clients spread out. */
  private backoff(failures: number): number {
    const ceiling = Math.min(this.o.retryMaxDelayMs, this.o.retryInitialDelayMs * 2 ** Math.min(failures - 1, 30));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  private async request(method: string, pathAndQuery: string, body: string, timeoutMs: number, signal?: AbortSignal, extraHeaders: Record<string, string> = {}): Promise<HttpAnswer> {
    const headers: Record<string, string> = { ...extraHeaders, authorization: `Bearer ${this.o.pak}` };
    if (body !== '') headers['content-type'] = 'application/json';
    if (this.o.pakSecret !== undefined) headers['x-panopticon-signature'] = signatureHeader(this.o.pakSecret, method, pathAndQuery, body);
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    try {
      res = await fetch(this.base + pathAndQuery, {
        method,
        headers,
        body: body === '' ? undefined : body,
        signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
      });
    } catch (err) {
      const timedOut = timeout.aborted;
      throw new PanopticonError(`${method} ${pathAndQuery}: ${timedOut ? `no answer within ${timeoutMs} ms` : String((err as Error).cause ?? err)}`, timedOut ? 'timeout' : 'network');
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new PanopticonError(`${method} ${pathAndQuery}: response cut off: ${String(err)}`, timeout.aborted ? 'timeout' : 'network');
    }
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  private unreachable(code: string, message: string): GuardDecision {
    const open = this.o.failMode === 'open';
    return {
      decision: open ? 'allow' : 'deny',
      reason: 'unreachable',
      message: `Panopticon guard unreachable (${code}): ${message}; failing ${open ? 'open' : 'closed'}`,
      source: open ? 'fail_open' : 'fail_closed',
      checkId: null,
      ruleId: null,
      approval: null,
    };
  }
}

function errorCode(answer: HttpAnswer): string {
  const code = answer.body?.error?.code;
  return typeof code === 'string' ? code : `http_${answer.status}`;
}

function errorMessage(answer: HttpAnswer): string | undefined {
  const m = answer.body?.error?.message;
  return typeof m === 'string' ? m : undefined;
}

export function createPanopticon(options: PanopticonOptions): Panopticon {
  return new Panopticon(options);
}
