/**
 * `npm run bench`: the ingest benchmark. Every server under test runs in a child process of its own
 * (bench/server.ts, bench/ceiling.ts); autocannon generates the load from this process, on
 * loopback, with a fixed number of connections for a fixed time per scenario, after a warm-up.
 *
 *   node dist/bench/run.js [--smoke] [--out docs/benchmarks.md] [--duration 8] [--warmup 2]
 *                          [--connections 64] [--rounds 5] [--profile-duration 6] [--no-profile]
 *                          [--only ceiling,sqlite-single,...,ceiling-profile,sqlite-profile,sqlite-batch-profile,sqlite-store]   (a subset, to iterate)
 *                          [--keep-profiles <dir>]
 *
 * The machine is shared (other users' builds and tests take cores at random), so absolute numbers
 * drift from one minute to the next. The scenarios that targets compare (the ceiling, single trace
 * and the naive baseline) are therefore run in --rounds rounds, each round measuring all of them
 * back to back; a ratio is taken within each round and the report gives the median over rounds.
 *
 * Writes a markdown report (results, targets with PASS/MISS, where the time goes) to --out.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { readProfile, summariseProfile, type ProfileSummary } from './profile.js';
import { renderReport } from './report.js';
import { openStore } from '../src/store/index.js';
import type { TraceRow } from '../src/store/types/store.js';
import { freshLocation, TEST_AUDIT_KEY } from '../test/support/harness.js';
import { uuidv7 } from '@panopticon/sdk';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '../..');

export type Engine = 'sqlite' | 'postgres';
export type ServerKind = 'ceiling' | 'group-commit' | 'per-request';
export type Load = 'unique' | 'dup30' | 'batch100' | 'batch100v7';

/** Batch loads: 100 items per request, with random (v4) ids or with the SDK's UUIDv7 ids. */
export const isBatch = (load: Load): boolean => load === 'batch100' || load === 'batch100v7';

export interface Scenario {
  id: string;
  label: string;
  engine: Engine | null;
  server: ServerKind;
  load: Load;
}

export interface ScenarioResult {
  scenario: Scenario;
  /** 1-based; scenarios outside the ratio targets run in round 1 only. */
  round: number;
  durationS: number;
  requests: number;
  reqPerSec: number;
  tracesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  status: Record<string, number>;
  non2xx: number;
  errors: number;
  timeouts: number;
  duplicatesSent: number;
  peakRssMb: number | null;
  /** Peak RSS of the set-up (start, migrations, tenant creation), before it was reset. */
  setupPeakRssMb: number | null;
  peakRssReset: boolean;
  cpu: CpuSplit | null;
  commits: number | null;
  rows: number | null;
}

export interface ProfileResult {
  /** null: the ceiling, profiled the same way so the report can set the two side by side. */
  engine: Engine | null;
  load: Load;
  durationS: number;
  reqPerSec: number;
  /** Traces answered in the measured window: the divisor for time per trace. */
  traces: number;
  /** The main thread. */
  summary: ProfileSummary;
  /** Worker threads (the SQLite commit worker), which V8 profiles separately. */
  workers: ProfileSummary[];
  commits: number | null;
  rows: number | null;
}

/** The SQLite store alone, without HTTP: how fast its commits go with random and with time-ordered event_ids. */
export interface StoreProbe {
  ids: 'random (v4)' | 'time-ordered (v7-like)';
  rows: number;
  rowsPerCommit: number;
  tracesPerSec: number;
}

export interface Options {
  smoke: boolean;
  out: string;
  durationS: number;
  warmupS: number;
  connections: number;
  profile: boolean;
  profileDurationS: number;
  /** Only these scenario ids (comma-separated), for iterating on one number. */
  only: string[] | null;
  /** Keep the raw .cpuprofile files in this directory (to open in Chrome DevTools). */
  keepProfiles: string | null;
  /** Rounds of the scenarios that ratio targets compare (ceiling, single trace, naive). */
  rounds: number;
}

const BATCH_ITEMS = 100;
const DUPLICATE_P = 0.3;

function parseOptions(argv: string[]): Options {
  const smoke = argv.includes('--smoke');
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    return v;
  };
  const num = (name: string, dflt: number, min: number): number => {
    const v = value(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`${name}: expected a number >= ${min}, got ${v}`);
    return n;
  };
  const out = path.resolve(value('--out') ?? path.join(REPO_ROOT, 'docs', 'benchmarks.md'));
  return {
    smoke,
    out,
    // --smoke (npm test) checks that every step runs, not how fast: the shortest windows that still
    // measure something, since the load saturates both cores of the CI machine while it lasts.
    durationS: num('--duration', smoke ? 0.5 : 8, 0.5),
    warmupS: num('--warmup', smoke ? 0.25 : 2, 0),
    connections: Math.floor(num('--connections', smoke ? 32 : 64, 1)),
    profile: !argv.includes('--no-profile'),
    profileDurationS: num('--profile-duration', smoke ? 0.5 : 6, 0.5),
    only: value('--only')?.split(',') ?? null,
    keepProfiles: value('--keep-profiles') ?? null,
    rounds: Math.floor(num('--rounds', smoke ? 1 : 5, 1)),
  };
}

/** Scenarios that a ratio target compares, measured in every round. */
export function isRatioScenario(s: Scenario): boolean {
  return s.server === 'ceiling' || s.server === 'per-request' || (s.server === 'group-commit' && s.load === 'unique');
}

export function scenarios(smoke: boolean): Scenario[] {
  const list: Scenario[] = [{ id: 'ceiling', label: 'CEILING: bare Fastify + same validation', engine: null, server: 'ceiling', load: 'unique' }];
  for (const engine of ['sqlite', 'postgres'] as const) {
    list.push({ id: `${engine}-single`, label: 'single trace, unique ids', engine, server: 'group-commit', load: 'unique' });
    if (!smoke) {
      list.push({ id: `${engine}-dup30`, label: 'single trace, 30% duplicates', engine, server: 'group-commit', load: 'dup30' });
      list.push({ id: `${engine}-batch`, label: `batch of ${BATCH_ITEMS}`, engine, server: 'group-commit', load: 'batch100' });
      list.push({ id: `${engine}-batch-v7`, label: `batch of ${BATCH_ITEMS}, UUIDv7 ids (as @panopticon/sdk sends)`, engine, server: 'group-commit', load: 'batch100v7' });
      list.push({ id: `${engine}-naive`, label: 'NAIVE: one commit per request', engine, server: 'per-request', load: 'unique' });
    }
  }
  return list;
}

// --- the server child process ---------------------------------------------------------------

interface Child {
  proc: ChildProcess;
  info: { url: string; clientId: string; pak: string; pid: number };
  next(predicate: (msg: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  stderr: () => string;
}

async function startChild(kind: ServerKind, engine: Engine | null, nodeArgs: string[] = []): Promise<Child> {
  const script = kind === 'ceiling' ? path.join(HERE, 'ceiling.js') : path.join(HERE, 'server.js');
  const args = kind === 'ceiling' ? [] : [engine!, kind];
  const proc = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const messages: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (text) => {
    try {
      messages.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of waiters.splice(0)) w();
  });
  const next = async (predicate: (msg: Record<string, unknown>) => boolean, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = messages.findIndex(predicate);
      if (i >= 0) return messages.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0 || proc.exitCode !== null) throw new Error(`bench ${kind} server: no expected output (exit ${proc.exitCode})\n${stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  const info = (await next((m) => typeof m.url === 'string')) as unknown as Child['info'];
  return { proc, info, next, exited, stderr: () => stderr };
}

async function mark(child: Child): Promise<{ hrtimeUs: number; stats: { commits: number; rows: number } | null }> {
  child.proc.kill('SIGUSR2');
  const m = await child.next((msg) => msg.mark === true, 10_000);
  return m as unknown as { hrtimeUs: number; stats: { commits: number; rows: number } | null };
}

function peakRssMb(pid: number): number | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m === null ? null : Number(m[1]) / 1024;
  } catch {
    return null;
  }
}

/**
 * Resets the process's peak RSS (VmHWM) to its current RSS, so the peak read at the end is the
 * peak under load and not that of the set-up (creating the tenant hashes a password with scrypt at
 * N=2^17, r=8: 128 MB for a moment). Returns the set-up peak, or null where Linux refuses.
 */
function resetPeakRss(pid: number): { setupPeakMb: number | null; reset: boolean } {
  const setupPeakMb = peakRssMb(pid);
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return { setupPeakMb, reset: true };
  } catch {
    return { setupPeakMb, reset: false };
  }
}

async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null) return;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 25_000);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== 0) process.stderr.write(`bench: server exited with ${code}\n${child.stderr()}\n`);
}

// --- CPU accounting: who used the cores during the measured window ---------------------------

interface CpuSnapshot {
  at: bigint;
  /** /proc/stat: busy and total jiffies of the whole machine. */
  busy: number;
  total: number;
  /** /proc/<pid>/stat: utime + stime of the server, in jiffies. */
  server: number;
  /** utime + stime of every process named postgres (its backends, WAL writer, checkpointer), in jiffies. */
  postgres: number;
  /** This process (the load generator), in microseconds. */
  self: NodeJS.CpuUsage;
}

const CLOCK_TICKS = 100;

/** utime + stime in jiffies and the command name, from /proc/<pid>/stat; null when the process is gone. */
function procTimes(pid: number | string): { comm: string; jiffies: number } | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; the fields follow the closing parenthesis.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return { comm: stat.slice(stat.indexOf('(') + 1, close), jiffies: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

function postgresJiffies(): number {
  let sum = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = procTimes(entry);
    if (t !== null && t.comm === 'postgres') sum += t.jiffies;
  }
  return sum;
}

function cpuSnapshot(pid: number): CpuSnapshot | null {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    const server = procTimes(pid);
    if (server === null) return null;
    return { at: process.hrtime.bigint(), busy: total - idle, total, server: server.jiffies, postgres: postgresJiffies(), self: process.cpuUsage() };
  } catch {
    return null;
  }
}

export interface CpuSplit {
  /**
   * Cores in use on average: the server process (all threads), the load generator, PostgreSQL's
   * processes (which may also be serving other users of the database), and everything else: other
   * users of the machine and kernel work not charged to a process.
   */
  server: number;
  loadgen: number;
  postgres: number;
  other: number;
  idle: number;
}

function cpuSplit(a: CpuSnapshot | null, b: CpuSnapshot | null, nproc: number): CpuSplit | null {
  if (a === null || b === null || b.total === a.total) return null;
  const seconds = Number(b.at - a.at) / 1e9;
  const busyCores = ((b.busy - a.busy) / (b.total - a.total)) * nproc;
  const server = (b.server - a.server) / CLOCK_TICKS / seconds;
  const loadgen = (b.self.user - a.self.user + b.self.system - a.self.system) / 1e6 / seconds;
  // A backend that exits inside the window takes its jiffies with it: never report less than nothing.
  const postgres = Math.max(0, (b.postgres - a.postgres) / CLOCK_TICKS / seconds);
  return { server, loadgen, postgres, other: Math.max(0, busyCores - server - loadgen - postgres), idle: Math.max(0, nproc - busyCores) };
}

// --- load -------------------------------------------------------------------------------------

function traceJson(clientId: string, eventId: string): string {
  return (
    `{"event_id":"${eventId}","client_id":"${clientId}","tool":"search_docs","scope_used":"agent:read",` +
    `"status":"ok","started_at":"2026-05-09T10:11:12.345Z","duration_ms":12,"user_sub":"user-42",` +
    `"session_id":"sess-7","attributes":{"model":"m-1","tokens":512,"cached":false}}`
  );
}

export const SAMPLE_PAYLOAD = traceJson('logi_0123456789ab', '00000000-0000-4000-8000-000000000000');

interface LoadState {
  duplicatesSent: number;
}

function loadRequest(load: Load, clientId: string, state: LoadState): autocannon.Request {
  if (isBatch(load)) {
    const newId = load === 'batch100v7' ? () => uuidv7() : () => crypto.randomUUID();
    return {
      method: 'POST',
      path: '/panopticon/traces',
      setupRequest: (req) => {
        let body = '{"traces":[';
        for (let i = 0; i < BATCH_ITEMS; i++) body += (i === 0 ? '' : ',') + traceJson(clientId, newId());
        return { ...req, body: `${body}]}` };
      },
    };
  }
  const recent: string[] = [];
  let cursor = 0;
  return {
    method: 'POST',
    path: '/panopticon/trace',
    setupRequest: (req) => {
      let id: string;
      if (load === 'dup30' && recent.length > 0 && Math.random() < DUPLICATE_P) {
        id = recent[Math.floor(Math.random() * recent.length)]!;
        state.duplicatesSent++;
      } else {
        id = crypto.randomUUID();
        if (load === 'dup30') {
          // The last 4096 ids sent: a resend picks one of them.
          if (recent.length < 4096) recent.push(id);
          else recent[cursor++ % 4096] = id;
        }
      }
      return { ...req, body: traceJson(clientId, id) };
    },
  };
}

async function drive(url: string, pak: string, load: Load, clientId: string, durationS: number, connections: number, state: LoadState) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (pak !== '') headers.authorization = `Bearer ${pak}`;
  const started = process.hrtime.bigint();
  const result = await autocannonFor(durationS, {
    url,
    connections,
    pipelining: 1,
    timeout: 20,
    headers,
    requests: [loadRequest(load, clientId, state)],
  });
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  return { result, wallS };
}

/**
 * autocannon for `durationS` seconds. It ends a run at its first sample after the time is up, and
 * samples once a second by default: asked for 0.25 or 0.5 s, it ran 1 s. A shorter window samples
 * that often instead (the rates come from the run's own start and finish, not from the samples).
 */
export function autocannonFor(durationS: number, options: autocannon.Options): Promise<autocannon.Result> {
  return autocannon({ ...options, duration: durationS, sampleInt: Math.min(1000, Math.round(durationS * 1000)) });
}

function summarise(scenario: Scenario, r: autocannon.Result, wallS: number): Omit<ScenarioResult, 'round' | 'peakRssMb' | 'setupPeakRssMb' | 'peakRssReset' | 'cpu' | 'commits' | 'rows' | 'duplicatesSent'> {
  const status: Record<string, number> = {};
  for (const [code, v] of Object.entries(r.statusCodeStats ?? {})) status[code] = (v as { count?: number }).count ?? 0;
  const durationS = r.start && r.finish ? (new Date(r.finish).getTime() - new Date(r.start).getTime()) / 1000 : wallS;
  const ok = r['2xx'];
  const items = isBatch(scenario.load) ? BATCH_ITEMS : 1;
  return {
    scenario,
    durationS,
    requests: r.requests.total,
    reqPerSec: r.requests.total / durationS,
    tracesPerSec: (ok * items) / durationS,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    status,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
}

async function runScenario(scenario: Scenario, round: number, opts: Options): Promise<ScenarioResult> {
  const child = await startChild(scenario.server, scenario.engine);
  try {
    const state: LoadState = { duplicatesSent: 0 };
    const { url, pak, clientId, pid } = child.info;
    const { setupPeakMb, reset } = resetPeakRss(pid);
    if (opts.warmupS > 0) await drive(url, pak, scenario.load, clientId, opts.warmupS, opts.connections, state);
    const before = await mark(child);
    state.duplicatesSent = 0;
    const cpuBefore = cpuSnapshot(pid);
    const { result, wallS } = await drive(url, pak, scenario.load, clientId, opts.durationS, opts.connections, state);
    const cpuAfter = cpuSnapshot(pid);
    const after = await mark(child);
    const peak = peakRssMb(pid);
    const s = summarise(scenario, result, wallS);
    return {
      ...s,
      round,
      duplicatesSent: state.duplicatesSent,
      peakRssMb: peak,
      setupPeakRssMb: setupPeakMb,
      peakRssReset: reset,
      cpu: cpuSplit(cpuBefore, cpuAfter, machine().nproc),
      commits: after.stats && before.stats ? after.stats.commits - before.stats.commits : null,
      rows: after.stats && before.stats ? after.stats.rows - before.stats.rows : null,
    };
  } finally {
    await stopChild(child);
  }
}

export function profileId(engine: Engine | null, load: Load): string {
  return engine === null ? 'ceiling' : `${engine}-${load === 'batch100' ? 'batch' : 'single'}`;
}

async function runProfile(engine: Engine | null, load: Load, opts: Options): Promise<ProfileResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panopticon-cpuprof-'));
  const kind: ServerKind = engine === null ? 'ceiling' : 'group-commit';
  const name = profileId(engine, load);
  try {
    const child = await startChild(kind, engine, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    let window: { fromUs: number; toUs: number };
    let stats: { commits: number; rows: number } | null = null;
    let reqPerSec = 0;
    let traces = 0;
    try {
      const state: LoadState = { duplicatesSent: 0 };
      const { url, pak, clientId } = child.info;
      if (opts.warmupS > 0) await drive(url, pak, load, clientId, opts.warmupS, opts.connections, state);
      const before = await mark(child);
      const { result, wallS } = await drive(url, pak, load, clientId, opts.profileDurationS, opts.connections, state);
      const after = await mark(child);
      reqPerSec = summarise({ id: 'profile', label: '', engine, server: kind, load }, result, wallS).reqPerSec;
      traces = result['2xx'] * (isBatch(load) ? BATCH_ITEMS : 1);
      window = { fromUs: before.hrtimeUs, toUs: after.hrtimeUs };
      if (after.stats && before.stats) stats = { commits: after.stats.commits - before.stats.commits, rows: after.stats.rows - before.stats.rows };
    } finally {
      await stopChild(child);
    }
    // One file per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile, the main thread being 0.
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    const threadOf = (f: string) => Number(f.split('.').at(-3));
    const main = files.find((f) => threadOf(f) === 0);
    if (main === undefined) throw new Error(`no main-thread .cpuprofile written in ${dir}`);
    const workerFiles = files.filter((f) => f !== main);
    if (opts.keepProfiles !== null) {
      fs.mkdirSync(opts.keepProfiles, { recursive: true });
      fs.copyFileSync(path.join(dir, main), path.join(opts.keepProfiles, `${name}.cpuprofile`));
      workerFiles.forEach((f, i) => fs.copyFileSync(path.join(dir, f), path.join(opts.keepProfiles!, `${name}.worker${i + 1}.cpuprofile`)));
      fs.writeFileSync(path.join(opts.keepProfiles, `${name}.window.json`), JSON.stringify(window));
    }
    const summary = summariseProfile(readProfile(path.join(dir, main)), window);
    const workers = workerFiles.map((f) => summariseProfile(readProfile(path.join(dir, f)), window));
    return { engine, load, durationS: opts.profileDurationS, reqPerSec, traces, summary, workers, commits: stats?.commits ?? null, rows: stats?.rows ?? null };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A UUIDv7-shaped id: a millisecond clock then a counter, so consecutive ids sort together. */
function timeOrderedId(startMs: number, i: number): string {
  const ms = (startMs + Math.floor(i / 4096)).toString(16).padStart(12, '0');
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${(i % 4096).toString(16).padStart(3, '0')}-8${crypto.randomBytes(2).toString('hex').slice(1)}-${crypto.randomBytes(6).toString('hex')}`;
}

/**
 * Commits `rows` traces straight through store.traces.insert on SQLite (the commit worker), in groups
 * of `perCommit` as batch ingest does, into a fresh file; rows are built before the clock starts.
 */
async function storeProbe(ids: StoreProbe['ids'], rows: number, perCommit: number): Promise<StoreProbe> {
  const { location, cleanup } = freshLocation('sqlite');
  const store = await openStore(location, { auditKey: TEST_AUDIT_KEY });
  try {
    const startMs = Date.now();
    const all: TraceRow[] = [];
    for (let i = 0; i < rows; i++) {
      all.push({
        clientId: 'logi_0123456789ab', eventId: ids === 'random (v4)' ? crypto.randomUUID() : timeOrderedId(startMs, i), tool: 'search_docs',
        scopeUsed: 'agent:read', status: 'ok', startedAtUs: 1_778_321_472_345_000, day: '2026-05-09', durationMs: 12, userSub: 'user-42',
        errorMessage: null, sessionId: 'sess-7', attributes: '{"model":"m-1","tokens":512,"cached":false}', keyId: 'pak_bench', receivedAt: startMs, checkId: null,
      });
    }
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rows; i += perCommit) await store.traces.insert(all.slice(i, i + perCommit));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { ids, rows, rowsPerCommit: perCommit, tracesPerSec: rows / seconds };
  } finally {
    await store.close();
    await cleanup();
  }
}

export function machine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: model,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    memoryGb: os.totalmem() / 1024 ** 3,
  };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const list = scenarios(opts.smoke && opts.only === null).filter((s) => opts.only === null || opts.only.includes(s.id));
  const started = Date.now();
  const results: ScenarioResult[] = [];
  // Each round measures the ratio scenarios back to back, so a ratio compares numbers taken under
  // about the same background load; the other scenarios run once, after the rounds.
  const plan: Array<{ scenario: Scenario; round: number }> = [];
  for (let round = 1; round <= opts.rounds; round++) for (const scenario of list.filter(isRatioScenario)) plan.push({ scenario, round });
  for (const scenario of list.filter((sc) => !isRatioScenario(sc))) plan.push({ scenario, round: 1 });
  for (const { scenario, round } of plan) {
    process.stderr.write(`bench: ${opts.rounds > 1 && isRatioScenario(scenario) ? `round ${round}/${opts.rounds} ` : ''}${scenario.id} (${scenario.label}) ... `);
    const r = await runScenario(scenario, round, opts);
    results.push(r);
    const cpu = r.cpu === null ? '' : `, cores busy outside the benchmark ${fmt(r.cpu.other, 2)}`;
    process.stderr.write(`${fmt(r.reqPerSec)} req/s, ${fmt(r.tracesPerSec)} traces/s, p99 ${r.p99Ms} ms, non-2xx ${r.non2xx}${cpu}\n`);
  }
  const probes: StoreProbe[] = [];
  if (opts.only === null ? !opts.smoke : opts.only.includes('sqlite-store')) {
    // Alternated, so both kinds of id see about the same background load.
    for (const ids of ['random (v4)', 'time-ordered (v7-like)', 'random (v4)', 'time-ordered (v7-like)'] as const) {
      process.stderr.write(`bench: SQLite store alone, ${ids} ids ... `);
      const p = await storeProbe(ids, 100_000, 500);
      probes.push(p);
      process.stderr.write(`${fmt(p.tracesPerSec)} traces/s\n`);
    }
  }
  const profiles: ProfileResult[] = [];
  if (opts.profile) {
    // The ceiling is profiled too: the gap is read module by module, per trace, against it. So is
    // SQLite batch ingest, which has a target of its own.
    const all: Array<[Engine | null, Load]> = [[null, 'unique'], ['sqlite', 'unique'], ['postgres', 'unique'], ['sqlite', 'batch100']];
    const chosen =
      opts.only !== null ? all.filter(([e, l]) => opts.only!.includes(`${profileId(e, l)}-profile`) || (l === 'unique' && opts.only!.includes(`${e ?? 'ceiling'}-profile`)))
      : opts.smoke ? all.filter(([e, l]) => e === 'sqlite' && l === 'unique')
      : all;
    for (const [engine, load] of chosen) {
      process.stderr.write(`bench: profile ${profileId(engine, load)} ... `);
      const p = await runProfile(engine, load, opts);
      profiles.push(p);
      process.stderr.write(`${fmt(p.reqPerSec)} req/s under --cpu-prof, idle ${fmt(p.summary.idleShare * 100)}%\n`);
    }
  }
  const report = renderReport({ opts, machine: machine(), results, profiles, probes, startedAt: new Date(started), elapsedS: (Date.now() - started) / 1000, payload: SAMPLE_PAYLOAD, batchItems: BATCH_ITEMS, duplicateP: DUPLICATE_P });
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, report.markdown);
  process.stderr.write(`\n${report.console}\nbench: wrote ${opts.out} in ${fmt((Date.now() - started) / 1000, 1)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
