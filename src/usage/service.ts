/** Daily usage per application (UTC date of started_at), with totals over the range. */
import type { Store, UsageRow } from '../store/types/store.js';

export const usageJson = (u: UsageRow) => ({
  date: u.day,
  traces: u.traces,
  errors: u.errors,
  hitl_requests: u.hitlRequests,
  kill_switch: u.killSwitch,
});

export type UsageJson = ReturnType<typeof usageJson>;

export function todayUtc(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

export function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

export async function usageReport(store: Store, clientId: string, since: string, until: string) {
  const rows = (await store.traces.usage(clientId, since, until)).map(usageJson);
  const totals = { traces: 0, errors: 0, hitl_requests: 0, kill_switch: 0 };
  for (const r of rows) {
    totals.traces += r.traces;
    totals.errors += r.errors;
    totals.hitl_requests += r.hitl_requests;
    totals.kill_switch += r.kill_switch;
  }
  return { client_id: clientId, since, until, rows, totals };
}
