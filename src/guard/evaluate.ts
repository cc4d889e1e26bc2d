/**
 * The pre-call decision, as a pure function of the compiled policy, the kill switches and the call:
 * kill switch → first matching enabled (and unexpired) rule → the app's default effect.
 *
 * Rate limits and remembered grants need shared state, so evaluation only says which counter a
 * matching rule would hit (`rateLimit`); the service counts and turns an exceeded limit into a deny
 * (`applyRateLimit`, also pure).
 *
 * Matching is linear-time by construction: globs use a two-pointer matcher (no regex), argument
 * regexes run under RE2 (re2js), so no rule can hang a node.
 */
import { RE2JS } from 're2js';
import type { Condition, Effect, PolicyDocument, RateLimit, Rule } from './policy.js';

export interface CheckInput {
  clientId: string;
  tool: string;
  scope: string;
  userSub: string | null;
  sessionId: string | null;
  arguments: unknown;
}

export interface KillState {
  /** App-wide switch, if on. */
  app: { reason: string } | null;
  /** Per-tool switches, by exact tool name. */
  tools: ReadonlyMap<string, { reason: string }>;
}

export const NO_KILLS: KillState = { app: null, tools: new Map() };

type Matcher = (value: unknown) => boolean;

interface CompiledRule {
  rule: Rule;
  tools: string[];
  scopes: string[];
  users: ReadonlySet<string> | null;
  conditions: Array<{ path: string[]; test: Matcher }>;
  expiresAtMs: number | null;
}

export interface CompiledPolicy {
  version: number;
  defaultEffect: Effect;
  rules: CompiledRule[];
}

export interface RateHit {
  bucket: string;
  windowStart: number;
  windowEnd: number;
  max: number;
}

export interface Evaluation {
  decision: Effect;
  /** `kill_switch`, `rate_limited`, `default`, or the matching rule's reason (its name when it has none). */
  reason: string;
  /** Human text to show beside the code-like reasons. */
  message: string;
  ruleId: string | null;
  killed: boolean;
  rateLimit: RateHit | null;
  /** For require_approval: how long the request waits. */
  approvalTtlMs: number | null;
  retryAfterSeconds: number | null;
}

export const DEFAULT_APPROVAL_TTL_MS = 10 * 60_000;

/** `*` any run of characters, `?` exactly one; everything else literal. O(n·m) worst case, no backtracking blow-up. */
export function globMatch(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (g < glob.length && (glob[g] === '?' || glob[g] === text[t])) {
      g++;
      t++;
    } else if (g < glob.length && glob[g] === '*') {
      star = g++;
      mark = t;
    } else if (star >= 0) {
      g = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}

/** `/a/0/b` (JSON pointer, with ~0 and ~1) or `a.0.b`. */
export function parsePath(path: string): string[] {
  if (path.startsWith('/')) return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  return path.split('.');
}

const MISSING = Symbol('missing');

function resolve(value: unknown, path: readonly string[]): unknown {
  let current: unknown = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return MISSING;
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(key)) return MISSING;
      current = current[Number(key)];
    } else {
      if (!Object.prototype.hasOwnProperty.call(current, key)) return MISSING;
      current = (current as Record<string, unknown>)[key];
    }
    if (current === undefined) return MISSING;
  }
  return current;
}

function asNumber(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/**
 * A positive test holds for a scalar, or for an array when every element passes (and it is not
 * empty): "every recipient ends in @ourco.com". Negated operators are its exact negation, so
 * `not_suffix` on a list holds when any recipient is outside.
 */
function compileCondition(c: Condition): { path: string[]; test: Matcher } {
  const path = parsePath(c.path);
  const negated = c.op === 'ne' || c.op.startsWith('not_');
  const base = (c.op === 'ne' ? 'eq' : c.op.replace(/^not_/, '')) as 'eq' | 'in' | 'matches' | 'prefix' | 'suffix' | 'gt' | 'gte' | 'lt' | 'lte' | 'exists';
  let scalar: (v: unknown) => boolean;
  switch (base) {
    case 'eq':
      scalar = (v) => v === c.value;
      break;
    case 'in': {
      const set = new Set(c.value as unknown[]);
      scalar = (v) => set.has(v);
      break;
    }
    case 'matches': {
      const re = RE2JS.compile(c.value as string);
      scalar = (v) => typeof v === 'string' && re.matcher(v).find();
      break;
    }
    case 'prefix':
      scalar = (v) => typeof v === 'string' && v.startsWith(c.value as string);
      break;
    case 'suffix':
      scalar = (v) => typeof v === 'string' && v.endsWith(c.value as string);
      break;
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const limit = c.value as number;
      const cmp = { gt: (n: number) => n > limit, gte: (n: number) => n >= limit, lt: (n: number) => n < limit, lte: (n: number) => n <= limit }[base];
      scalar = (v) => {
        const n = asNumber(v);
        return n !== null && cmp(n);
      };
      break;
    }
    case 'exists':
      scalar = () => true;
      break;
  }
  const positive = (v: unknown): boolean => {
    if (v === MISSING) return false;
    if (base === 'exists') return true;
    if (Array.isArray(v)) return v.length > 0 && v.every(scalar);
    return scalar(v);
  };
  return { path, test: negated ? (v) => !positive(v) : positive };
}

export function compilePolicy(doc: PolicyDocument, version: number): CompiledPolicy {
  return {
    version,
    defaultEffect: doc.default_effect,
    rules: doc.rules.map((rule) => ({
      rule,
      tools: rule.match.tools,
      scopes: rule.match.scopes,
      users: rule.match.users.length > 0 ? new Set(rule.match.users) : null,
      conditions: rule.match.arguments.map(compileCondition),
      expiresAtMs: rule.expires_at === null ? null : Date.parse(rule.expires_at),
    })),
  };
}

function ruleMatches(r: CompiledRule, input: CheckInput): boolean {
  if (r.tools.length > 0 && !r.tools.some((g) => globMatch(g, input.tool))) return false;
  if (r.scopes.length > 0 && !r.scopes.some((g) => globMatch(g, input.scope))) return false;
  if (r.users !== null && (input.userSub === null || !r.users.has(input.userSub))) return false;
  for (const c of r.conditions) if (!c.test(resolve(input.arguments, c.path))) return false;
  return true;
}

const PERIOD_MS: Record<RateLimit['period'], number> = { second: 1000, minute: 60_000, hour: 3600_000, day: 86_400_000 };

function rateHit(limit: RateLimit, rule: Rule, input: CheckInput, now: number): RateHit {
  const windowMs = PERIOD_MS[limit.period];
  const windowStart = Math.floor(now / windowMs) * windowMs;
  const subject = limit.per === 'app' ? '*' : limit.per === 'user' ? `u:${input.userSub ?? ''}` : `t:${input.tool}`;
  return { bucket: `${input.clientId}|${rule.id}|${limit.per}|${subject}`, windowStart, windowEnd: windowStart + windowMs, max: limit.max };
}

export function evaluate(policy: CompiledPolicy, kills: KillState, input: CheckInput, now: number): Evaluation {
  const kill = kills.app ?? kills.tools.get(input.tool) ?? null;
  if (kill !== null) {
    return { decision: 'deny', reason: 'kill_switch', message: kill.reason, ruleId: null, killed: true, rateLimit: null, approvalTtlMs: null, retryAfterSeconds: null };
  }
  for (const compiled of policy.rules) {
    const { rule } = compiled;
    if (!rule.enabled || (compiled.expiresAtMs !== null && compiled.expiresAtMs <= now)) continue;
    if (!ruleMatches(compiled, input)) continue;
    return {
      decision: rule.effect,
      reason: rule.reason ?? rule.name,
      message: rule.reason ?? `matched rule "${rule.name}"`,
      ruleId: rule.id,
      killed: false,
      rateLimit: rule.rate_limit === null ? null : rateHit(rule.rate_limit, rule, input, now),
      approvalTtlMs: rule.effect === 'require_approval' ? (rule.approval_ttl_seconds ?? DEFAULT_APPROVAL_TTL_MS / 1000) * 1000 : null,
      retryAfterSeconds: null,
    };
  }
  return {
    decision: policy.defaultEffect,
    reason: 'default',
    message: `no rule matched; the app's default is ${policy.defaultEffect}`,
    ruleId: null,
    killed: false,
    rateLimit: null,
    approvalTtlMs: policy.defaultEffect === 'require_approval' ? DEFAULT_APPROVAL_TTL_MS : null,
    retryAfterSeconds: null,
  };
}

/** The rule's window already holds `count` hits including this one: over the limit is a deny. */
export function applyRateLimit(e: Evaluation, count: number, now: number): Evaluation {
  if (e.rateLimit === null || count <= e.rateLimit.max) return e;
  const retryAfterSeconds = Math.max(1, Math.ceil((e.rateLimit.windowEnd - now) / 1000));
  return {
    ...e,
    decision: 'deny',
    reason: 'rate_limited',
    message: `rate limit of ${e.rateLimit.max} per window exceeded; retry in ${retryAfterSeconds} s`,
    approvalTtlMs: null,
    retryAfterSeconds,
  };
}

export { canonicalJson } from './canonical-json.js';
