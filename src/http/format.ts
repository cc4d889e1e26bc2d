/** JSON shapes of domain records as the API returns them (snake_case, RFC 3339 times). */
import type { Account, App, Pak } from '../store/types.js';

export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

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
