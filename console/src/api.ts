/**
 * The console's only way to the server: the operator JSON API of docs/api.md, same-origin, with the
 * session cookie. Every failure becomes an ApiError carrying the catalogue code, so screens branch
 * on `code` (e.g. `unauthenticated` → sign-in page) and show `message` and `request_id`.
 */

export type TraceStatus = 'ok' | 'error' | 'denied' | 'timeout';
export type Effect = 'allow' | 'deny' | 'require_approval';

export interface Account { id: string; email: string; is_owner: boolean; created_at: string }
export interface AppInfo { client_id: string; name: string; panopticon_enabled: boolean; created_at: string }
export interface Pak {
  id: string; client_id: string; prefix: string; status: 'active' | 'expiring' | 'expired' | 'revoked';
  created_at: string; last_used_at: string | null; expires_at: string | null; revoked_at: string | null;
}
export interface IssuedPak extends Pak { pak: string }
export interface Trace {
  event_id: string; client_id: string; tool: string; scope_used: string; status: TraceStatus; started_at: string;
  duration_ms: number; user_sub: string | null; error_message: string | null; session_id: string | null;
  attributes: Record<string, unknown> | null; received_at: string; key_id: string;
}
export interface LiveTrace extends Trace { seq: number }
export interface TracePage { traces: Trace[]; next_cursor: string | null }
export interface TraceFilters { tool?: string; status?: TraceStatus | ''; user_sub?: string; since?: string; until?: string }
export interface Counters { traces: number; errors: number; hitl_requests: number; kill_switch: number }
export interface UsageReport { client_id: string; since: string; until: string; rows: Array<Counters & { date: string }>; totals: Counters }
export interface ArgCondition { path: string; op: string; value?: unknown }
export interface RuleMatch { tools: string[]; scopes: string[]; users: string[]; arguments: ArgCondition[] }
export interface RateLimit { max: number; period: 'second' | 'minute' | 'hour' | 'day'; per: 'app' | 'user' | 'tool' }
export interface Rule {
  id: string; name: string; enabled: boolean; effect: Effect; match: RuleMatch; rate_limit: RateLimit | null; reason: string | null;
  approval_ttl_seconds: number | null; expires_at: string | null; created_at: string; updated_at: string;
}
export interface RuleInput {
  name: string; effect: Effect; enabled?: boolean; match: Partial<RuleMatch>; rate_limit?: RateLimit | null; reason?: string | null;
  approval_ttl_seconds?: number | null; expires_at?: string | null; position?: number;
}
export interface KillSwitch { tool: string | null; reason: string; created_by: string; created_at: string }
export interface Policy {
  client_id: string; version: number; updated_at: string | null; default_effect: Effect; rules: Rule[];
  kill_switches: KillSwitch[]; keep_arguments: boolean;
}
export interface DecisionCounts { allow: number; deny: number; require_approval: number }
export interface Simulation {
  client_id: string; current_version: number; samples: number; from: string | null; to: string | null;
  current: DecisionCounts; proposed: DecisionCounts; changed: number; undecidable: number;
  rules: Array<{ rule_id: string | null; name: string; matched: number; changed: number; to_allow: number; to_deny: number; to_require_approval: number }>;
  examples: Array<Record<string, unknown>>;
}
export interface AuditEntry {
  seq: number; at: string; actor: string; actor_email: string | null; action: string; target: string | null;
  before: unknown; after: unknown; keyed: boolean; prev_hash: string; hash: string;
}
/** unkeyed_entries: written before the chain was keyed (not tamper-evident before unkeyed_sealed_at). */
export type AuditVerification = { entries: number; unkeyed_entries: number; unkeyed_sealed_at: string | null } & (
  | { ok: true; head: string | null }
  | { ok: false; problem: string; seq: number; detail: string });

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';
export interface Approval {
  id: string; client_id: string; status: ApprovalStatus; tool: string; scope: string; user_sub: string | null; session_id: string | null;
  arguments_hash: string; rule_id: string | null; reason: string; check_id: string; created_at: string; expires_at: string;
  decided_at: string | null; decided_by: string | null; comment: string | null; remember: string | null; grant_id: string | null;
}
export type Remember = 'once' | 'session' | 'always';
export interface Grant {
  id: string; client_id: string; kind: 'session' | 'always'; status: 'active' | 'expired' | 'revoked'; tool: string; user_sub: string | null;
  session_id: string | null; arguments_hash: string; approval_id: string; created_by: string; created_at: string; expires_at: string | null;
  revoked_at: string | null; uses: number;
}
export interface SigningSecret { id: string; prefix: string; status: 'active' | 'expiring' | 'expired' | 'revoked'; created_at: string; expires_at: string | null; revoked_at: string | null }
export interface HmacState { client_id: string; enabled: boolean; secrets: SigningSecret[] }
export interface IssuedSecret { pak_secret: string; client_id: string; enabled: true; secret: SigningSecret; previous?: SigningSecret[] }
export type NewTools = 'allow' | 'require_approval';
export interface ToolDefinition {
  id: string; hash: string; status: 'approved' | 'pending' | 'rejected' | 'superseded'; definition: Record<string, unknown>;
  first_seen_at: string; last_seen_at: string; decided_at: string | null; decided_by: string | null;
}
export interface McpTool {
  name: string; status: 'approved' | 'quarantined' | 'rejected'; pinned: ToolDefinition | null; changes: ToolDefinition[];
  first_seen_at: string; last_seen_at: string; last_seen_hash: string | null; calls: number;
}
export interface ToolList { client_id: string; new_tools: NewTools; calls_since: string; tools: McpTool[] }
export const WEBHOOK_EVENTS = ['approval.requested', 'approval.decided', 'approval.expired', 'kill_switch.on', 'kill_switch.off', 'tool.changed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
export interface Webhook { id: string; client_id: string; url: string; format: 'json' | 'slack'; events: WebhookEvent[]; enabled: boolean; created_at: string }
export interface Delivery {
  id: string; webhook_id: string; event: WebhookEvent; status: 'pending' | 'delivered' | 'failed' | 'dropped'; attempts: number; last_status_code: number | null;
  last_error: string | null; created_at: string; next_attempt_at: string | null; completed_at: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
    readonly fields?: Array<{ field: string; message: string }>,
    /** The error's other members, e.g. `decided_by` of a 409 approval_decided. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { ...init.headers, 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network_error', 'The server cannot be reached');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const e = (json as { error?: { code: string; message: string; request_id?: string; fields?: Array<{ field: string; message: string }> } } | null)?.error;
    throw new ApiError(res.status, e?.code ?? 'http_error', e?.message ?? `HTTP ${res.status}`, e?.request_id, e?.fields, (e ?? {}) as Record<string, unknown>);
  }
  return json as T;
}

const enc = encodeURIComponent;
const appPath = (clientId: string) => `/api/apps/${enc(clientId)}`;

function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

export const api = {
  me: () => call<{ account: Account; via: string }>('GET', '/api/me'),
  signup: (email: string, password: string) => call<{ account: Account }>('POST', '/api/auth/signup', { email, password }),
  login: (email: string, password: string) => call<{ account: Account }>('POST', '/api/auth/login', { email, password }),
  logout: () => call<void>('POST', '/api/auth/logout'),

  apps: () => call<{ apps: AppInfo[] }>('GET', '/api/apps'),
  app: (clientId: string) => call<AppInfo>('GET', appPath(clientId)),
  createApp: (name: string) => call<AppInfo>('POST', '/api/apps', { name }),
  updateApp: (clientId: string, patch: { name?: string; panopticon_enabled?: boolean }) => call<AppInfo>('PATCH', appPath(clientId), patch),

  paks: (clientId: string) => call<{ paks: Pak[] }>('GET', `${appPath(clientId)}/paks`),
  issuePak: (clientId: string) => call<IssuedPak>('POST', `${appPath(clientId)}/paks`),
  rotatePak: (clientId: string, graceSeconds: number) => call<IssuedPak & { previous: Pak[] }>('POST', `${appPath(clientId)}/paks/rotate`, { grace_seconds: graceSeconds }),
  revokePaks: (clientId: string, keyId?: string) => call<{ revoked: Pak[] }>('POST', `${appPath(clientId)}/paks/revoke`, keyId === undefined ? {} : { key_id: keyId }),

  traces: (clientId: string, filters: TraceFilters, cursor: string | null, limit = 50) =>
    call<TracePage>('GET', `${appPath(clientId)}/traces${query({ ...filters, cursor, limit })}`),
  /** The SSE URL of Live Trace (EventSource sends the cookie and, on reconnect, Last-Event-ID). */
  liveUrl: (clientId: string, filters: { tool?: string; status?: string; user_sub?: string }, after: number | null) =>
    `${appPath(clientId)}/live${query({ ...filters, after })}`,
  usage: (clientId: string, since: string, until: string) => call<UsageReport>('GET', `${appPath(clientId)}/usage${query({ since, until })}`),

  policy: (clientId: string) => call<Policy>('GET', `${appPath(clientId)}/policies`),
  addRule: (clientId: string, rule: RuleInput) => call<{ version: number; rule: Rule; position: number }>('POST', `${appPath(clientId)}/policies/rules`, rule),
  replaceRule: (clientId: string, ruleId: string, rule: RuleInput) => call<{ version: number; rule: Rule }>('PUT', `${appPath(clientId)}/policies/rules/${enc(ruleId)}`, rule),
  setRuleEnabled: (clientId: string, ruleId: string, enabled: boolean) =>
    call<{ version: number; rule: Rule }>('POST', `${appPath(clientId)}/policies/rules/${enc(ruleId)}/${enabled ? 'enable' : 'disable'}`),
  moveRule: (clientId: string, ruleId: string, position: number) => call<{ version: number }>('POST', `${appPath(clientId)}/policies/rules/${enc(ruleId)}/move`, { position }),
  removeRule: (clientId: string, ruleId: string) => call<{ version: number }>('DELETE', `${appPath(clientId)}/policies/rules/${enc(ruleId)}`),
  setDefault: (clientId: string, effect: Effect) => call<{ version: number }>('PUT', `${appPath(clientId)}/policies/default`, { effect }),
  simulate: (clientId: string, policy: unknown, sinceHours: number) => call<Simulation>('POST', `${appPath(clientId)}/policies/simulate`, { policy, since_hours: sinceHours }),
  kill: (clientId: string, reason: string, tool?: string) => call<{ kill_switch: KillSwitch; was_on: boolean }>('POST', `${appPath(clientId)}/kill`, tool ? { reason, tool } : { reason }),
  revive: (clientId: string, tool?: string | null) => call<{ revived: KillSwitch }>('POST', `${appPath(clientId)}/revive`, tool ? { tool } : {}),

  approvals: (clientId: string, status: ApprovalStatus | '', limit = 100) =>
    call<{ approvals: Approval[]; next_cursor: string | null }>('GET', `${appPath(clientId)}/approvals${query({ status, limit })}`),
  /** The inbox's SSE URL: `ready`, then `requested` / `decided` / `expired` with an Approval, or `resync`. */
  approvalsLiveUrl: (clientId: string) => `${appPath(clientId)}/approvals/live`,
  approve: (approvalId: string, body: { comment?: string; remember?: Remember; remember_for_seconds?: number }) =>
    call<{ approval: Approval; grant: Grant | null }>('POST', `/api/approvals/${enc(approvalId)}/approve`, body),
  deny: (approvalId: string, body: { comment?: string }) => call<{ approval: Approval; grant: null }>('POST', `/api/approvals/${enc(approvalId)}/deny`, body),
  grants: (clientId: string, includeRevoked: boolean) =>
    call<{ grants: Grant[]; counts: { active: number; expired: number; revoked: number; uses: number } }>('GET', `${appPath(clientId)}/grants${query({ include_revoked: includeRevoked ? 'true' : undefined })}`),
  revokeGrant: (clientId: string, grantId: string) => call<Grant>('DELETE', `${appPath(clientId)}/grants/${enc(grantId)}`),

  hmac: (clientId: string) => call<HmacState>('GET', `${appPath(clientId)}/hmac`),
  enableHmac: (clientId: string) => call<IssuedSecret>('POST', `${appPath(clientId)}/hmac/enable`),
  rotateHmac: (clientId: string, graceSeconds: number) => call<IssuedSecret>('POST', `${appPath(clientId)}/hmac/rotate`, { grace_seconds: graceSeconds }),
  disableHmac: (clientId: string) => call<{ client_id: string; enabled: false; revoked: SigningSecret[] }>('POST', `${appPath(clientId)}/hmac/disable`),

  webhooks: (clientId: string) => call<{ webhooks: Webhook[] }>('GET', `${appPath(clientId)}/webhooks`),
  addWebhook: (clientId: string, body: { url: string; format: 'json' | 'slack'; events: WebhookEvent[] }) =>
    call<Webhook & { secret: string }>('POST', `${appPath(clientId)}/webhooks`, body),
  removeWebhook: (clientId: string, webhookId: string) => call<Webhook>('DELETE', `${appPath(clientId)}/webhooks/${enc(webhookId)}`),
  deliveries: (clientId: string, webhookId: string) => call<{ deliveries: Delivery[] }>('GET', `${appPath(clientId)}/webhooks/${enc(webhookId)}/deliveries${query({ limit: 20 })}`),

  tools: (clientId: string) => call<ToolList>('GET', `${appPath(clientId)}/tools`),
  decideTool: (clientId: string, definitionId: string, decision: 'approve' | 'reject') =>
    call<{ tool: string; definition: ToolDefinition; previous: ToolDefinition | null }>('POST', `${appPath(clientId)}/tools/definitions/${enc(definitionId)}/${decision}`),
  setNewTools: (clientId: string, newTools: NewTools) => call<{ client_id: string; new_tools: NewTools }>('PUT', `${appPath(clientId)}/tools/settings`, { new_tools: newTools }),

  audit: (clientId: string, beforeSeq: number | null) => call<{ entries: AuditEntry[]; next_before_seq: number | null }>('GET', `${appPath(clientId)}/audit${query({ before_seq: beforeSeq, limit: 50 })}`),
  verifyAudit: (clientId: string) => call<AuditVerification>('GET', `${appPath(clientId)}/audit/verify`),
};
