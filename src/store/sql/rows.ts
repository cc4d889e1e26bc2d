/** Maps database rows (snake_case, engine-typed) to domain records; shared by both engines. */
import type { Account, App, OperatorToken, Pak, PakAuthRecord, StoredTrace, TraceStatus, UsageRow } from '../types/store.js';

type Row = Record<string, unknown>;

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export const toAccount = (r: Row): Account => ({
  id: String(r.id),
  email: String(r.email),
  passwordHash: String(r.password_hash),
  isOwner: Boolean(r.is_owner),
  createdAt: num(r.created_at),
});

export const toOperatorToken = (r: Row): OperatorToken => ({
  id: String(r.id),
  accountId: String(r.account_id),
  prefix: String(r.prefix),
  name: String(r.name),
  createdAt: num(r.created_at),
  lastUsedAt: numOrNull(r.last_used_at),
});

export const toApp = (r: Row): App => ({
  clientId: String(r.client_id),
  accountId: String(r.account_id),
  name: String(r.name),
  panopticonEnabled: Boolean(r.panopticon_enabled),
  hmacEnabled: Boolean(r.hmac_enabled),
  keepArguments: Boolean(r.keep_arguments),
  createdAt: num(r.created_at),
});

export const toPak = (r: Row): Pak => ({
  id: String(r.id),
  clientId: String(r.client_id),
  prefix: String(r.prefix),
  createdAt: num(r.created_at),
  lastUsedAt: numOrNull(r.last_used_at),
  expiresAt: numOrNull(r.expires_at),
  revokedAt: numOrNull(r.revoked_at),
});

export const toPakAuth = (r: Row): PakAuthRecord => ({
  keyId: String(r.id),
  keyHash: String(r.key_hash),
  clientId: String(r.client_id),
  panopticonEnabled: Boolean(r.panopticon_enabled),
  hmacEnabled: Number(r.hmac_enabled) === 1,
  expiresAt: numOrNull(r.expires_at),
  revokedAt: numOrNull(r.revoked_at),
});

export const toTrace = (r: Row): StoredTrace => ({
  seq: num(r.seq),
  clientId: String(r.client_id),
  eventId: String(r.event_id),
  tool: String(r.tool),
  scopeUsed: String(r.scope_used),
  status: String(r.status) as TraceStatus,
  startedAtUs: num(r.started_at_us),
  day: String(r.day),
  durationMs: num(r.duration_ms),
  userSub: strOrNull(r.user_sub),
  errorMessage: strOrNull(r.error_message),
  sessionId: strOrNull(r.session_id),
  checkId: strOrNull(r.check_id),
  attributes: strOrNull(r.attributes),
  keyId: String(r.key_id),
  receivedAt: num(r.received_at),
});

export const toUsage = (r: Row): UsageRow => ({
  day: String(r.day),
  traces: num(r.traces),
  errors: num(r.errors),
  hitlRequests: num(r.hitl_requests),
  killSwitch: num(r.kill_switch),
});
