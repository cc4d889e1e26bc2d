/**
 * What the MCP proxy decides, whatever the transport (stdio or Streamable HTTP): which tools of a
 * `tools/list` result the client may see (tool pinning), whether a `tools/call` may reach the
 * server (pinning, then the AI Guard and a human approval), and the trace of every call.
 *
 * Pinning: each listed definition is reported to Panopticon (`POST /panopticon/tools`), which
 * answers approved (pinned), pending (quarantined) or rejected. Only approved tools stay in the
 * list; a call names a tool, and is refused unless the definition the server showed last for that
 * name is approved. When Panopticon cannot be asked, fail-closed shows only definitions it approved
 * earlier in this process (an unverified description can carry a prompt injection) and refuses the
 * rest; fail-open shows and allows them.
 *
 * Refusals are MCP tool results with `isError: true` (not JSON-RPC errors), so the client hands
 * them to the model as the call's outcome instead of failing the request.
 */
import type { GuardDecision, Panopticon, ToolDefinition, TraceStatus } from '@panopticon/sdk';
import { uuidv7 } from '@panopticon/sdk';
import { canonicalDefinition, definitionHash, pinnedDefinition } from '../tools/definition.js';

/** The server's limits on one report (src/tools/routes.ts TOOL_LIMITS), checked here so one odd tool cannot fail the whole report. */
const REPORT_BATCH = 500;
/** The route takes 2 MiB; what a batch's definitions may add up to, leaving room for the envelope. */
const REPORT_BATCH_BYTES = 1536 * 1024;
const DEFINITION_BYTES = 64 * 1024;
/** How often the hidden tools are asked about again, so one an operator approves shows without a relist. */
export const HIDDEN_RECHECK_MS = 3000;

const DEFINITION_DEPTH = 32;

export interface ToolResult {
  content: Array<{ type: 'text'; text: string }>;
  isError: true;
}

export const toolError = (text: string): ToolResult => ({ content: [{ type: 'text', text }], isError: true });

/** Who and what a call is, as this transport knows it. */
export interface CallContext {
  scope: string;
  userSub: string | null;
  sessionId: string | null;
  /** The JSON-RPC id of the tools/call, for the trace. */
  requestId: string | number | null;
}

export interface GovernorOptions {
  panopticon: Panopticon;
  /** Ask the guard before each call. Off (`--no-guard`): calls are only pinned and traced. */
  guard: boolean;
  failOpen: boolean;
  /** Longest wait for a human's approval; null: until the approval request expires. */
  approvalTimeoutMs: number | null;
  /** `stdio` or `http`, in each trace's attributes. */
  transport: 'stdio' | 'http';
  log: (message: string) => void;
}

/**
 * `unverified`: Panopticon could not be reached (the fail mode decides); `refused`: it refused the
 * report (a revoked key, the app turned off): hidden and refused in both fail modes.
 */
type PinStatus = 'approved' | 'pending' | 'rejected' | 'unverified' | 'refused' | 'unpinnable';

interface Pin {
  hash: string;
  status: PinStatus;
  definitionId: string | null;
  /** The tool's approved definition, when it has one: a pending definition of a pinned tool is a change. */
  pinnedHash: string | null;
  definition: ToolDefinition;
  /** Why a definition cannot be pinned (too large, malformed). */
  problem?: string;
}

/** A call let through: what its trace needs once the server answers. */
export interface CallTicket {
  tool: string;
  eventId: string;
  ctx: CallContext;
  startedAt: number;
  attributes: Record<string, unknown>;
}

export type Admission = { run: true; ticket: CallTicket } | { run: false; result: ToolResult };

/** How a call that reached the server ended. */
export type CallOutcome =
  | { kind: 'result'; result: unknown }
  | { kind: 'error'; message: string }
  | { kind: 'timeout'; afterMs: number }
  | { kind: 'cancelled'; reason: string };

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function depthOf(value: unknown, limit: number, depth = 1): number {
  if (!isPlainObject(value) && !Array.isArray(value)) return depth - 1;
  let max = depth;
  for (const child of Object.values(value)) {
    if (child === null || typeof child !== 'object') continue;
    max = Math.max(max, depth + 1 > limit ? depth + 1 : depthOf(child, limit, depth + 1));
    if (max > limit) break;
  }
  return max;
}

/** Why the server would refuse to pin this tool; null when it can be reported. */
function unpinnable(tool: Record<string, unknown>, canonical: string): string | null {
  const name = tool.name;
  if (typeof name !== 'string' || name.length < 1 || name.length > 256 || name.includes('\u0000')) return 'its name is not 1-256 characters without U+0000';
  if (tool.title !== undefined && (typeof tool.title !== 'string' || tool.title.length > 1024)) return 'its title is not a string of at most 1024 characters';
  if (tool.description !== undefined && typeof tool.description !== 'string') return 'its description is not a string';
  for (const field of ['inputSchema', 'outputSchema', 'annotations'] as const) {
    if (tool[field] !== undefined && !isPlainObject(tool[field])) return `its ${field} is not an object`;
  }
  if (depthOf(pinnedDefinition(tool), DEFINITION_DEPTH) > DEFINITION_DEPTH) return `its definition nests deeper than ${DEFINITION_DEPTH} levels`;
  if (Buffer.byteLength(canonical) > DEFINITION_BYTES) return `its definition is larger than ${DEFINITION_BYTES} bytes`;
  return null;
}

/** Reports of at most REPORT_BATCH definitions and REPORT_BATCH_BYTES of them (one is at most 64 KiB). */
function batches<T extends { canonical: string }>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = Buffer.byteLength(item.canonical);
    if (current.length > 0 && (current.length >= REPORT_BATCH || bytes + size > REPORT_BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function firstText(result: unknown): string | null {
  if (!isPlainObject(result) || !Array.isArray(result.content)) return null;
  const text = (result.content as unknown[]).find((c) => isPlainObject(c) && c.type === 'text' && typeof c.text === 'string') as { text: string } | undefined;
  return text === undefined ? null : text.text.slice(0, 4096);
}

export class Governor {
  /** The definition each tool name was last listed with, and what Panopticon said of it. */
  private readonly pins = new Map<string, Pin>();
  /** `name\0hash` of every definition Panopticon approved in this process: shown while it cannot be asked (fail-closed). */
  private readonly approvedOnce = new Set<string>();

  constructor(private readonly o: GovernorOptions) {}

  /**
   * The tools of one `tools/list` result page that the client may see, after reporting them.
   * Unknown fields of each tool are kept as the server sent them; hidden tools are logged.
   */
  async filterTools(tools: readonly unknown[]): Promise<unknown[]> {
    const entries = tools.map((tool) => {
      const t = isPlainObject(tool) ? tool : {};
      const canonical = canonicalDefinition(t);
      return { tool, t, canonical, hash: definitionHash(canonical), problem: unpinnable(t, canonical) };
    });
    const names = new Map<string, number>();
    for (const e of entries) if (typeof e.t.name === 'string') names.set(e.t.name, (names.get(e.t.name) ?? 0) + 1);
    for (const e of entries) if (e.problem === null && (names.get(e.t.name as string) ?? 0) > 1) e.problem = 'the server listed two tools with this name';
    const reportable = entries.filter((e) => e.problem === null);

    const verdicts = new Map<string, { status: 'approved' | 'pending' | 'rejected'; definitionId: string | null; pinnedHash: string | null }>();
    let failure: { unreachable: boolean; text: string } | null = null;
    for (const batch of batches(reportable)) {
      if (failure !== null) break;
      const report = await this.o.panopticon.reportTools(batch.map((e) => pinnedDefinition(e.t) as ToolDefinition));
      if (!report.ok) {
        failure = report.unreachable
          ? { unreachable: true, text: `Panopticon is unreachable (${report.code})` }
          : { unreachable: false, text: `Panopticon refused the tool report (${report.code}: ${report.message})` };
        break;
      }
      for (const v of report.tools) verdicts.set(v.name, { status: v.status, definitionId: v.definitionId, pinnedHash: v.pinnedHash });
    }
    if (failure?.unreachable === true) this.o.log(`${failure.text}: ${this.o.failOpen ? 'showing' : 'hiding'} the tool definitions it has not approved before (${this.o.failOpen ? 'fail-open' : 'fail-closed'})`);
    else if (failure !== null) this.o.log(`${failure.text}: hiding every tool not approved before, in any fail mode`);

    const visible: unknown[] = [];
    for (const e of entries) {
      const name = typeof e.t.name === 'string' ? e.t.name : null;
      if (name === null) continue;
      const definition = pinnedDefinition(e.t) as ToolDefinition;
      let pin: Pin;
      if (e.problem !== null) pin = { hash: e.hash, status: 'unpinnable', definitionId: null, pinnedHash: null, definition, problem: e.problem };
      else {
        const v = verdicts.get(name);
        pin = v !== undefined ? { hash: e.hash, definition, ...v }
          : { hash: e.hash, status: failure?.unreachable === false ? 'refused' : 'unverified', definitionId: null, pinnedHash: null, definition, problem: failure?.text };
      }
      this.pins.set(name, pin);
      if (pin.status === 'approved') this.approvedOnce.add(`${name}\u0000${e.hash}`);
      if (this.shown(name, pin)) visible.push(e.tool);
      else if (pin.status !== 'unverified' && pin.status !== 'refused') this.o.log(`tool "${name}" hidden: ${this.why(name, pin)}`);
    }
    return visible;
  }

  /** Whether a call to `name` has a pin yet (it was listed through this proxy). */
  knows(name: string): boolean {
    return this.pins.has(name);
  }

  /**
   * Pinning, then the guard, then a human if the guard asks for one. A refusal is traced here and
   * comes back as the tool result to answer with; an admission carries what the trace needs.
   */
  async admit(tool: string, args: unknown, ctx: CallContext): Promise<Admission> {
    const calledAt = Date.now();
    const eventId = uuidv7();
    const attributes: Record<string, unknown> = { 'mcp.method.name': 'tools/call', 'panopticon.proxy': this.o.transport };
    if (ctx.requestId !== null) attributes['mcp.request.id'] = String(ctx.requestId);
    const refuse = (text: string, why: string): Admission => {
      this.trace({ tool, eventId, ctx, startedAt: calledAt, attributes }, 'denied', why);
      return { run: false, result: toolError(text) };
    };

    let pin = this.pins.get(tool);
    if (pin !== undefined && pin.status !== 'approved' && pin.status !== 'unpinnable') pin = await this.recheck(tool, pin);
    if (pin === undefined) return refuse(`Refused by Panopticon: the server did not list a tool named "${tool}", so it cannot be pinned; list tools first.`, 'tool_not_listed');
    attributes['mcp.tool.hash'] = pin.hash;
    if (pin.definitionId !== null) attributes['panopticon.tool_definition_id'] = pin.definitionId;
    if (!this.shown(tool, pin)) return refuse(`Refused by Panopticon: ${this.why(tool, pin)}.`, `tool_${pin.status}`);

    let decision: GuardDecision | null = null;
    if (this.o.guard) {
      decision = await this.o.panopticon.check({
        tool, scope: ctx.scope, userSub: ctx.userSub, sessionId: ctx.sessionId, eventId,
        arguments: isPlainObject(args) ? args : null,
      });
      if (decision.checkId !== null) attributes['panopticon.check_id'] = decision.checkId;
      if (decision.decision === 'deny') {
        const why = decision.source === 'server' ? decision.message || decision.reason : decision.message;
        this.o.log(`call to "${tool}" denied: ${why}`);
        return refuse(`Denied by Panopticon: ${why}`, `${decision.reason}: ${why}`);
      }
      if (decision.decision === 'require_approval') {
        const approval = decision.approval;
        if (approval === null) return refuse('Denied by Panopticon: approval required but no approval request was opened', 'require_approval without an approval request');
        attributes['panopticon.approval_id'] = approval.id;
        this.o.log(`call to "${tool}" waits for approval ${approval.id} (logi panopticon approvals approve ${approval.id})`);
        const untilExpiry = Date.parse(approval.expires_at) - Date.now() + 1000;
        const timeoutMs = this.o.approvalTimeoutMs ?? (Number.isFinite(untilExpiry) ? Math.max(0, untilExpiry) : 300_000);
        const outcome = await this.o.panopticon.waitForApproval(approval.id, { timeoutMs });
        if (!outcome.approved) {
          const comment = typeof outcome.approval?.comment === 'string' ? `: ${outcome.approval.comment}` : '';
          this.o.log(`call to "${tool}" not approved (${outcome.status})`);
          return refuse(`Not approved (${outcome.status})${comment}. Approval ${approval.id}: ${decision.message || decision.reason}`, `approval ${outcome.status}${comment}`);
        }
      }
    }
    return { run: true, ticket: { tool, eventId, ctx, startedAt: Date.now(), attributes } };
  }

  /** Traces a call that reached the server, by how it ended. */
  finish(ticket: CallTicket, outcome: CallOutcome): void {
    switch (outcome.kind) {
      case 'result': {
        const r = outcome.result;
        if (isPlainObject(r) && r.isError === true) this.trace(ticket, 'error', firstText(r));
        else this.trace(ticket, 'ok', null);
        break;
      }
      case 'error':
        this.trace(ticket, 'error', outcome.message.slice(0, 4096));
        break;
      case 'timeout':
        this.trace(ticket, 'timeout', `no result within ${outcome.afterMs} ms`);
        break;
      case 'cancelled':
        this.trace(ticket, 'error', `cancelled: ${outcome.reason}`.slice(0, 4096));
        break;
    }
  }

  private trace(t: CallTicket, status: TraceStatus, errorMessage: string | null): void {
    this.o.panopticon.trace({
      eventId: t.eventId, tool: t.tool, scope: t.ctx.scope, status, startedAt: new Date(t.startedAt), durationMs: Date.now() - t.startedAt,
      userSub: t.ctx.userSub, sessionId: t.ctx.sessionId, errorMessage, attributes: t.attributes,
      checkId: typeof t.attributes['panopticon.check_id'] === 'string' ? t.attributes['panopticon.check_id'] : null,
    });
  }

  /**
   * Asks Panopticon about every hidden tool (pending, rejected, unverified, refused) every
   * `intervalMs` while there are any, and calls `shown` with the names of those it may show now
   * (an operator approved them, or Panopticon is back for a definition approved before), so the
   * transport can send `notifications/tools/list_changed`. Returns the function that stops it.
   */
  watchHidden(shown: (names: string[]) => void, intervalMs = HIDDEN_RECHECK_MS): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.recheckHidden()
        .then((names) => {
          if (names.length > 0) shown(names);
        })
        .catch((err: unknown) => this.o.log(`rechecking the hidden tools failed: ${String(err)}`))
        .finally(() => {
          running = false;
        });
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  private async recheckHidden(): Promise<string[]> {
    const hidden = [...this.pins]
      .filter(([name, pin]) => pin.status !== 'unpinnable' && !this.shown(name, pin))
      // `canonical` only sizes the batches here.
      .map(([name, pin]) => ({ name, pin, canonical: JSON.stringify(pin.definition) }));
    const nowShown: string[] = [];
    for (const batch of batches(hidden)) {
      const report = await this.o.panopticon.reportTools(batch.map((h) => h.pin.definition));
      // Unreachable or refused: nothing hidden can be shown yet; asked again at the next tick.
      if (!report.ok) break;
      const verdicts = new Map(report.tools.map((v) => [v.name, v]));
      for (const { name, pin } of batch) {
        const v = verdicts.get(name);
        // Listed again meanwhile (another definition): that list's verdict stands.
        if (v === undefined || this.pins.get(name) !== pin) continue;
        const fresh = this.applyVerdict(name, pin, v);
        if (this.shown(name, fresh)) {
          this.o.log(`tool "${name}" may be shown now (${v.status}): telling the client its tool list changed`);
          nowShown.push(name);
        }
      }
    }
    return nowShown;
  }

  /** A quarantined or unverified definition is asked about again at call time: an operator may have approved it since. */
  private async recheck(tool: string, pin: Pin): Promise<Pin> {
    const report = await this.o.panopticon.reportTools([pin.definition]);
    if (!report.ok) {
      const refused: Pin = { ...pin, status: 'refused', problem: `Panopticon refused the tool report (${report.code}: ${report.message})` };
      return report.unreachable ? pin : refused;
    }
    const v = report.tools[0];
    return v === undefined ? pin : this.applyVerdict(tool, pin, v);
  }

  /** Records what Panopticon now says of a pinned definition; the pin as it is now. */
  private applyVerdict(name: string, pin: Pin, v: Pick<Pin, 'status' | 'definitionId' | 'pinnedHash'>): Pin {
    const fresh: Pin = { ...pin, status: v.status, definitionId: v.definitionId, pinnedHash: v.pinnedHash, problem: undefined };
    this.pins.set(name, fresh);
    if (v.status === 'approved') this.approvedOnce.add(`${name}\u0000${pin.hash}`);
    return fresh;
  }

  /** Shown in tools/list, and callable (before the guard). */
  private shown(name: string, pin: Pin): boolean {
    if (pin.status === 'approved') return true;
    if (pin.status === 'unverified') return this.o.failOpen || this.approvedOnce.has(`${name}\u0000${pin.hash}`);
    if (pin.status === 'refused') return this.approvedOnce.has(`${name}\u0000${pin.hash}`);
    return false;
  }

  private why(name: string, pin: Pin): string {
    switch (pin.status) {
      case 'pending':
        return pin.definitionId === null
          ? `tool "${name}" is new and cannot be pinned (the application keeps at most 1000 tools)`
          : pin.pinnedHash === null
            ? `tool "${name}" is new and waits for an operator's approval (definition ${pin.definitionId})`
            : `tool "${name}" changed since it was approved and is quarantined until an operator approves the new definition (${pin.definitionId})`;
      case 'rejected':
        return `an operator rejected this definition of tool "${name}" (${pin.definitionId})`;
      case 'unpinnable':
        return `tool "${name}" cannot be pinned: ${pin.problem ?? 'malformed'}`;
      case 'unverified':
        return `Panopticon is unreachable, so the definition of tool "${name}" cannot be verified; this proxy fails closed`;
      case 'refused':
        return `the definition of tool "${name}" cannot be verified: ${pin.problem ?? 'Panopticon refused the tool report'}`;
      case 'approved':
        return 'approved';
    }
  }
}
