/**
 * Shared pieces of the fault tests: traffic that keeps hitting a server while a fault is injected,
 * counted by status, and the bookkeeping that proves no acknowledged trace was lost.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { http, postTrace, REPO_ROOT, traceBody, type Tenant } from './harness.js';

export type StatusCounts = Record<string, number>;

export function countStatus(counts: StatusCounts, status: number | string): void {
  counts[String(status)] = (counts[String(status)] ?? 0) + 1;
}

export function formatCounts(counts: StatusCounts): string {
  return Object.entries(counts).sort().map(([s, n]) => `${s}: ${n}`).join(', ') || 'none';
}

/** What a client saw, and which traces the server acknowledged (202/200): those must all be stored. */
export interface Traffic {
  traces: StatusCounts;
  checks: StatusCounts;
  acked: Set<string>;
  /** Traces answered 503: none of them may be stored. */
  refused: Set<string>;
  /** Answers that were neither success nor a documented 503 with Retry-After. */
  unexpected: string[];
  /** Slowest answer of /healthz and /livez, in ms. */
  slowestProbeMs: number;
  stop(): Promise<void>;
}

/**
 * Sends traces and guard checks one after another (one of each in flight), and probes /livez
 * every 50 ms, until stopped or `maxMs` passed. Bounded in time; only the server's loopback URL.
 */
export function keepSending(url: string, t: Tenant, maxMs = 60_000): Traffic {
  const traffic: Traffic = { traces: {}, checks: {}, acked: new Set(), refused: new Set(), unexpected: [], slowestProbeMs: 0, stop: async () => {} };
  const until = Date.now() + maxMs;
  let running = true;
  const judge = (kind: string, status: number, headers: Headers, text: string) => {
    const documented = status < 300 || (status === 503 && headers.get('retry-after') !== null && text.includes('store_unavailable'));
    if (!documented) traffic.unexpected.push(`${kind} ${status} ${text.slice(0, 200)}`);
  };
  const traces = (async () => {
    while (running && Date.now() < until) {
      const body = traceBody(t.clientId);
      try {
        const r = await postTrace(url, t.pak, body);
        countStatus(traffic.traces, r.status);
        judge('trace', r.status, r.headers, r.text);
        if (r.status === 202 || r.status === 200) traffic.acked.add(body.event_id as string);
        if (r.status === 503) traffic.refused.add(body.event_id as string);
      } catch {
        countStatus(traffic.traces, 'network');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
  const checks = (async () => {
    while (running && Date.now() < until) {
      try {
        const r = await http(url, 'POST', '/panopticon/guard/check', { token: t.pak, body: { client_id: t.clientId, tool: 'hello', scope: 'agent:read' } });
        countStatus(traffic.checks, r.status);
        judge('check', r.status, r.headers, r.text);
      } catch {
        countStatus(traffic.checks, 'network');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
  const probes = (async () => {
    while (running && Date.now() < until) {
      const started = performance.now();
      try {
        await http(url, 'GET', '/livez');
      } catch {
        /* counted as slow below */
      }
      traffic.slowestProbeMs = Math.max(traffic.slowestProbeMs, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  traffic.stop = async () => {
    running = false;
    await Promise.all([traces, checks, probes]);
  };
  return traffic;
}

/** Polls `ready` every 25 ms until it resolves true; returns the ms it took, or throws after `maxMs`. */
export async function timeUntil(ready: () => Promise<boolean>, maxMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await ready().catch(() => false)) return performance.now() - started;
    if (performance.now() - started > maxMs) throw new Error(`not ready after ${maxMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A trace that the server accepts, or false: what "ingest works again" means. */
export async function ingestWorks(url: string, t: Tenant): Promise<boolean> {
  const r = await postTrace(url, t.pak, traceBody(t.clientId, { event_id: crypto.randomUUID() }));
  return r.status === 202;
}

export interface ForeignLock {
  release(): Promise<void>;
}

/**
 * Another process takes SQLite's write lock on `file` (BEGIN IMMEDIATE) and holds it until
 * released (or `maxMs`, so a failed test cannot leave it behind).
 */
export async function holdSqliteWriteLock(file: string, maxMs = 30_000): Promise<ForeignLock> {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(file)});
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    const release = () => { db.exec('COMMIT'); db.close(); process.exit(0); };
    process.stdin.on('data', release);
    setTimeout(release, ${maxMs});
  `;
  const child = spawn(process.execPath, ['-e', script], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.on('exit', (code) => reject(new Error(`lock holder exited (${code})`)));
  });
  return {
    async release() {
      child.stdin!.end('go\n');
      await exited;
    },
  };
}
