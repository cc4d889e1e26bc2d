/**
 * One-line governance for an MCP server built with @modelcontextprotocol/sdk's McpServer:
 *
 *   instrumentMcpServer(server, panopticon, { timeoutMs: 30_000 });
 *
 * Every tool call is first checked with the AI Guard (deny → an MCP tool error carrying the
 * reason; require_approval → the call waits for a human, then runs or is refused), then run, timed,
 * and traced as ok / error / denied / timeout.
 *
 * Nothing is imported from the MCP SDK at run time (it is an optional peer dependency): the server
 * is duck-typed. Tool handlers are wrapped where McpServer takes them — `registerTool()` and
 * `tool()` for tools registered afterwards, its tool registry for tools registered before, and a
 * registered tool's `update({ callback })` — so the wrapping survives SDK versions that change how
 * tools/call is dispatched, as long as handlers are called as `(args, extra)` or `(extra)`.
 */
import { uuidv7 } from './uuid.js';
import type { Panopticon } from './client.js';
import type { ApprovalRef, GuardDecision, TraceStatus } from './types.js';

/** The parts of the MCP SDK's RequestHandlerExtra the instrumentation reads. */
export interface McpRequestExtra {
  sessionId?: string;
  requestId?: string | number;
  authInfo?: {
    token?: string;
    clientId?: string;
    scopes?: string[];
    extra?: Record<string, unknown>;
  };
  [key: string]: unknown;
}

/**
 * An option given either as a value, used for every call, or as a function of the call's context,
 * evaluated for each call. A function that returns no string (null, undefined, '') gives no value
 * for that call: `scope` then falls back to its default, `userSub` and `sessionId` to none.
 */
export type PerCall<Args extends unknown[]> = string | ((...args: Args) => string | null | undefined);

export interface InstrumentOptions {
  /**
   * The scope reported for a call (and matched by policies' `scopes`): a string for every call, or
   * `(toolName, extra) => string`. Default: the caller's OAuth scopes (`extra.authInfo.scopes`,
   * space-separated), else `defaultScope`.
   */
  scope?: PerCall<[toolName: string, extra: McpRequestExtra]>;
  /** Scope when neither `scope` nor the caller's token gives one. Default `mcp:tools`. */
  defaultScope?: string;
  /**
   * The end user of a call (the trace's `user_sub`, matched by policies' `users`): a string for
   * every call, `(extra) => string`, or null for none. Default: `extra.authInfo.extra.sub` (the
   * token's subject), else `extra.authInfo.clientId`, else none.
   */
  userSub?: PerCall<[extra: McpRequestExtra]> | null;
  /**
   * The session of a call (the trace's `session_id`): a string for every call, `(extra) => string`,
   * or null for none. Default: `extra.sessionId` (the MCP session of HTTP transports), else none.
   */
  sessionId?: PerCall<[extra: McpRequestExtra]> | null;
  /** A call running longer than this is answered with a tool error and traced as `timeout`. Default: no limit. */
  timeoutMs?: number;
  /** How long a call waits for a human's approval. Default: until the approval request expires. */
  approvalTimeoutMs?: number;
  /** Send the call's arguments to the guard (policies can match on them). Default true. */
  sendArguments?: boolean;
  /** Called when a call starts waiting for approval, e.g. to log where to approve it. */
  onApprovalRequired?: (info: { tool: string; approval: ApprovalRef; decision: GuardDecision }) => void;
}

/** Longest delay setTimeout honours (a larger one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

const OPTION_KINDS: Record<keyof InstrumentOptions, string> = {
  scope: 'a non-empty string or a function (toolName, extra) => string',
  defaultScope: 'a non-empty string',
  userSub: 'a non-empty string, null, or a function (extra) => string',
  sessionId: 'a non-empty string, null, or a function (extra) => string',
  timeoutMs: `a positive number of milliseconds (at most ${MAX_TIMER_MS})`,
  approvalTimeoutMs: `a positive number of milliseconds (at most ${MAX_TIMER_MS})`,
  sendArguments: 'a boolean',
  onApprovalRequired: 'a function',
};

const describeValue = (v: unknown): string => {
  if (v === null) return 'null';
  if (typeof v === 'string') return v === '' ? 'an empty string' : `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
};

/** Checks every option once, when instrumenting, so a mistake is not a failure of every call. */
function validateOptions(options: unknown): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`instrumentMcpServer: options must be an object, got ${describeValue(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const [name, value] of Object.entries(o)) {
    if (!Object.hasOwn(OPTION_KINDS, name)) {
      throw new TypeError(`instrumentMcpServer: unknown option "${name}" (known: ${Object.keys(OPTION_KINDS).join(', ')})`);
    }
    if (value === undefined) continue;
    const key = name as keyof InstrumentOptions;
    let ok: boolean;
    switch (key) {
      case 'scope':
        ok = typeof value === 'function' || (typeof value === 'string' && value !== '');
        break;
      case 'userSub':
      case 'sessionId':
        ok = value === null || typeof value === 'function' || (typeof value === 'string' && value !== '');
        break;
      case 'defaultScope':
        ok = typeof value === 'string' && value !== '';
        break;
      case 'timeoutMs':
      case 'approvalTimeoutMs':
        ok = typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_TIMER_MS;
        break;
      case 'sendArguments':
        ok = typeof value === 'boolean';
        break;
      case 'onApprovalRequired':
        ok = typeof value === 'function';
        break;
    }
    if (!ok) throw new TypeError(`instrumentMcpServer: option "${name}" must be ${OPTION_KINDS[key]}, got ${describeValue(value)}`);
  }
}

/** The value of a value-or-function option for one call; undefined when it gives none. */
function resolve<Args extends unknown[]>(option: PerCall<Args> | null | undefined, ...args: Args): string | null | undefined {
  if (option === null || option === undefined) return option;
  const v = typeof option === 'function' ? option(...args) : option;
  return typeof v === 'string' && v !== '' ? v : undefined;
}

const WRAPPED = Symbol.for('panopticon.instrumented');
const SCOPE_MAX = 256;

type Handler = ((...args: unknown[]) => unknown) & { [WRAPPED]?: true };

interface ToolResult {
  content?: Array<{ type: string; text?: string }>;
  isError?: boolean;
}

const toolError = (text: string): ToolResult & { content: Array<{ type: 'text'; text: string }> } => ({
  content: [{ type: 'text', text }],
  isError: true,
});

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function errorText(result: ToolResult): string | null {
  const text = result.content?.find((c) => c.type === 'text' && typeof c.text === 'string')?.text;
  return text === undefined ? null : text.slice(0, 4096);
}

/**
 * Instruments `server` in place and returns it. Calling it twice is harmless.
 * Throws a TypeError when `server` does not look like an McpServer, and when an option is unknown
 * or of the wrong type (the message names the option and what it accepts).
 */
export function instrumentMcpServer<S extends object>(server: S, panopticon: Panopticon, options: InstrumentOptions = {}): S {
  const s = server as Record<string | symbol, any>;
  if (s === null || (typeof s.registerTool !== 'function' && typeof s.tool !== 'function')) {
    throw new TypeError('instrumentMcpServer: expected an McpServer (with registerTool() or tool())');
  }
  validateOptions(options);
  if (s[WRAPPED] === true) return server;
  s[WRAPPED] = true;

  const scopeOf = (tool: string, extra: McpRequestExtra): string => {
    const tokenScopes = Array.isArray(extra.authInfo?.scopes) ? extra.authInfo.scopes.join(' ') : '';
    const chosen = resolve(options.scope, tool, extra) || tokenScopes;
    const scope = chosen === '' ? (options.defaultScope ?? 'mcp:tools') : chosen;
    return scope.slice(0, SCOPE_MAX);
  };
  const userOf = (extra: McpRequestExtra): string | null => {
    if (options.userSub !== undefined) return resolve(options.userSub, extra)?.slice(0, 256) ?? null;
    const sub = extra.authInfo?.extra?.sub;
    if (typeof sub === 'string' && sub !== '') return sub.slice(0, 256);
    const clientId = extra.authInfo?.clientId;
    return typeof clientId === 'string' && clientId !== '' ? clientId.slice(0, 256) : null;
  };
  const sessionOf = (extra: McpRequestExtra): string | null => {
    if (options.sessionId !== undefined) return resolve(options.sessionId, extra)?.slice(0, 256) ?? null;
    return typeof extra.sessionId === 'string' && extra.sessionId !== '' ? extra.sessionId.slice(0, 256) : null;
  };

  async function governed(tool: string, args: unknown, extra: McpRequestExtra, run: () => unknown): Promise<unknown> {
    const eventId = uuidv7();
    const calledAt = Date.now();
    const scope = scopeOf(tool, extra);
    const userSub = userOf(extra);
    const sessionId = sessionOf(extra);
    const attributes: Record<string, unknown> = { 'mcp.method.name': 'tools/call' };
    if (extra.requestId !== undefined) attributes['mcp.request.id'] = String(extra.requestId);
    const record = (status: TraceStatus, startedAt: number, errorMessage: string | null) => {
      panopticon.trace({ eventId, tool, scope, status, startedAt: new Date(startedAt), durationMs: Date.now() - startedAt, userSub, sessionId, errorMessage, attributes });
    };

    const decision = await panopticon.check({
      tool, scope, userSub, sessionId, eventId,
      arguments: options.sendArguments !== false && isPlainObject(args) ? args : null,
    });
    if (decision.checkId !== null) attributes['panopticon.check_id'] = decision.checkId;
    if (decision.decision === 'deny') {
      const why = decision.message || decision.reason;
      record('denied', calledAt, `${decision.reason}: ${why}`);
      return toolError(`Denied by Panopticon: ${why}`);
    }
    if (decision.decision === 'require_approval') {
      const approval = decision.approval;
      if (approval === null) {
        record('denied', calledAt, 'require_approval without an approval request');
        return toolError('Denied by Panopticon: approval required but no approval request was opened');
      }
      attributes['panopticon.approval_id'] = approval.id;
      options.onApprovalRequired?.({ tool, approval, decision });
      const untilExpiry = Date.parse(approval.expires_at) - Date.now() + 1000;
      const timeoutMs = options.approvalTimeoutMs ?? (Number.isFinite(untilExpiry) ? Math.max(0, untilExpiry) : 300_000);
      const outcome = await panopticon.waitForApproval(approval.id, { timeoutMs });
      if (!outcome.approved) {
        const comment = typeof outcome.approval?.comment === 'string' ? `: ${outcome.approval.comment}` : '';
        record('denied', calledAt, `approval ${outcome.status}${comment}`);
        return toolError(`Not approved (${outcome.status})${comment}. Approval ${approval.id}: ${decision.message || decision.reason}`);
      }
    }

    const startedAt = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const TIMED_OUT = Symbol('timeout');
    try {
      const running = Promise.resolve().then(run);
      const result = options.timeoutMs === undefined
        ? await running
        : await Promise.race([running, new Promise<typeof TIMED_OUT>((resolve) => { timer = setTimeout(() => resolve(TIMED_OUT), options.timeoutMs); })]);
      if (result === TIMED_OUT) {
        // The handler cannot be cancelled from here; its eventual result is discarded.
        running.catch(() => {});
        record('timeout', startedAt, `no result within ${options.timeoutMs} ms`);
        return toolError(`Tool ${tool} timed out after ${options.timeoutMs} ms`);
      }
      const r = result as ToolResult | undefined;
      if (r?.isError === true) record('error', startedAt, errorText(r));
      else record('ok', startedAt, null);
      return result;
    } catch (err) {
      record('error', startedAt, (err instanceof Error ? err.message : String(err)).slice(0, 4096));
      // McpServer turns a thrown error into its own tool error; keep that behaviour.
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  function wrap(tool: string, handler: unknown): unknown {
    if (typeof handler !== 'function' || (handler as Handler)[WRAPPED] === true) return handler;
    const original = handler as Handler;
    // McpServer calls (args, extra) for tools with an input schema and (extra) for the others.
    const wrapped: Handler = function (this: unknown, ...callArgs: unknown[]) {
      const extra = (isPlainObject(callArgs[callArgs.length - 1]) ? callArgs[callArgs.length - 1] : {}) as McpRequestExtra;
      const args = callArgs.length > 1 ? callArgs[0] : undefined;
      return governed(tool, args, extra, () => original.apply(this, callArgs));
    };
    wrapped[WRAPPED] = true;
    return wrapped;
  }

  function watchUpdates(tool: string, registered: unknown): void {
    if (!isPlainObject(registered) || typeof registered.update !== 'function') return;
    const update = registered.update as (u: Record<string, unknown>) => unknown;
    registered.update = (u: Record<string, unknown>) => {
      const name = typeof u.name === 'string' ? u.name : tool;
      return update(u.callback === undefined ? u : { ...u, callback: wrap(name, u.callback) });
    };
  }

  const registry = s._registeredTools;
  if (isPlainObject(registry)) {
    for (const [name, t] of Object.entries(registry)) {
      if (isPlainObject(t) && typeof t.handler === 'function') {
        t.handler = wrap(name, t.handler);
        watchUpdates(name, t);
      }
    }
  }
  if (typeof s.registerTool === 'function') {
    const registerTool = s.registerTool as (...a: unknown[]) => unknown;
    s.registerTool = function (this: unknown, name: string, config: unknown, cb: unknown) {
      const registered = registerTool.call(this, name, config, wrap(name, cb));
      watchUpdates(name, registered);
      return registered;
    };
  }
  if (typeof s.tool === 'function') {
    const toolFn = s.tool as (...a: unknown[]) => unknown;
    s.tool = function (this: unknown, name: string, ...rest: unknown[]) {
      const last = rest.length - 1;
      if (last >= 0) rest[last] = wrap(name, rest[last]);
      const registered = toolFn.call(this, name, ...rest);
      watchUpdates(name, registered);
      return registered;
    };
  }
  return server;
}
