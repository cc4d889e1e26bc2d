/**
 * Concurrent trace senders for the crash and shutdown tests: N loops posting traces over real
 * connections until told to stop, some of them resending an event_id another loop already used
 * (so duplicates race their originals), each outcome recorded with the id it carried.
 */
import crypto from 'node:crypto';
import { openStore } from '../../src/store/index.js';
import type { StoreLocation } from '../../src/config.js';
import type { Tenant } from './harness.js';
import { TEST_AUDIT_KEY, traceBody } from './harness.js';

export interface SendOutcome {
  eventId: string;
  /** HTTP status, or null when no response arrived (connection refused, reset, closed). */
  status: number | null;
  body: string;
  /** The network error code when status is null (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET...). */
  error: string | null;
}

export interface Load {
  outcomes: SendOutcome[];
  /** Every event_id sent at least once. */
  ids: Set<string>;
  acked(): number;
  /** Stops starting new requests and resolves once every started one has its outcome. */
  stop(): Promise<SendOutcome[]>;
}

/** A few UTC days, with offsets, so usage spreads over several rows. */
const STARTED = ['2026-05-09T10:11:12Z', '2026-05-10T23:59:59.999+09:00', '2026-05-10T00:00:00Z', '2026-05-11T08:00:00-05:00'];
const STATUSES = ['ok', 'ok', 'error', 'timeout', 'denied'] as const;

export function startLoad(url: string, tenant: Tenant, options: { senders?: number; duplicateEvery?: number } = {}): Load {
  const senders = options.senders ?? 16;
  const duplicateEvery = options.duplicateEvery ?? 5;
  const outcomes: SendOutcome[] = [];
  const ids = new Set<string>();
  const sent: string[] = [];
  let stopped = false;
  let n = 0;

  async function sendOne(eventId: string, i: number): Promise<void> {
    const body = JSON.stringify(traceBody(tenant.clientId, {
      event_id: eventId,
      started_at: STARTED[i % STARTED.length],
      status: STATUSES[i % STATUSES.length],
    }));
    try {
      const res = await fetch(`${url}/panopticon/trace`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.pak}`, 'content-type': 'application/json' },
        body,
      });
      outcomes.push({ eventId, status: res.status, body: await res.text(), error: null });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      outcomes.push({ eventId, status: null, body: '', error: cause?.code ?? cause?.message ?? String(err) });
    }
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      const i = n++;
      let eventId: string;
      if (i % duplicateEvery === duplicateEvery - 1 && sent.length > 0) {
        eventId = sent[Math.floor(Math.random() * sent.length)]!;
      } else {
        eventId = crypto.randomUUID();
        sent.push(eventId);
      }
      ids.add(eventId);
      await sendOne(eventId, i);
    }
  }

  const loops = Array.from({ length: senders }, () => loop());
  return {
    outcomes,
    ids,
    acked: () => outcomes.filter((o) => o.status === 202 || o.status === 200).length,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** Resolves once `predicate` holds, polling; rejects after `timeoutMs` (generous: the CPU is shared). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The event_ids stored for an app, read straight from the database (the server may be gone). */
export async function storedIds(location: StoreLocation, clientId: string): Promise<Set<string>> {
  const store = await openStore(location, { auditKey: TEST_AUDIT_KEY, pgPoolSize: 2 });
  try {
    const rows = await store.traces.list({ clientId, limit: 1_000_000 });
    return new Set(rows.map((r) => r.eventId));
  } finally {
    await store.close();
  }
}
