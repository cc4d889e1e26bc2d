/** JSON shapes of domain records as the API returns them (snake_case, RFC 3339 times). */
import type { Account, App, Pak, StoredTrace } from '../store/types/store.js';
import { formatMicros } from '../traces/ingest.js';

/** RFC 3339 in UTC; null stays null (so a time that is always set types as a string). */
export function iso(ms: number): string;
export function iso(ms: number | null): string | null;
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export const accountJson = (a: Account) => ({ id: a.id, email: a.email, is_owner: a.isOwner, created_at: iso(a.createdAt) });

export const appJson = (a: App) => ({
  client_id: a.clientId,
  name: a.name,
  panopticon_enabled: a.panopticonEnabled,
  hmac_enabled: a.hmacEnabled,
  created_at: iso(a.createdAt),
});

export function pakStatus(p: Pak, now: number): 'active' | 'expiring' | 'expired' | 'revoked' {
  if (p.revokedAt !== null) return 'revoked';
  if (p.expiresAt === null) return 'active';
  return p.expiresAt > now ? 'expiring' : 'expired';
}

export const pakJson = (p: Pak, now: number) => ({
  id: p.id,
  client_id: p.clientId,
  prefix: p.prefix,
  status: pakStatus(p, now),
  created_at: iso(p.createdAt),
  last_used_at: iso(p.lastUsedAt),
  expires_at: iso(p.expiresAt),
  revoked_at: iso(p.revokedAt),
});

/** The guard decision a trace's check_id names, as the timeline shows it. */
export type GuardView = { decision: string; reason: string; rule_id: string | null; policy_version: number; approval_id: string | null; grant_id: string | null };

/** A stored trace as the API answers it (timeline, live stream). */
export function traceJson(t: StoredTrace, guard?: ReadonlyMap<string, GuardView>) {
  return {
    event_id: t.eventId,
    client_id: t.clientId,
    tool: t.tool,
    scope_used: t.scopeUsed,
    status: t.status,
    started_at: formatMicros(t.startedAtUs),
    duration_ms: t.durationMs,
    user_sub: t.userSub,
    error_message: t.errorMessage,
    session_id: t.sessionId,
    attributes: t.attributes === null ? null : (JSON.parse(t.attributes) as Record<string, unknown>),
    received_at: new Date(t.receivedAt).toISOString(),
    key_id: t.keyId,
    check_id: t.checkId,
    ...(guard === undefined ? {} : { guard: (t.checkId === null ? undefined : guard.get(t.checkId)) ?? null }),
  };
}
