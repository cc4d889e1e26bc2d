/** Renders the benchmark's results as docs/benchmarks.md (and a short console summary). */
import type { Engine, Options, ProfileResult, ScenarioResult, StoreProbe } from './run.js';

export interface ReportInput {
  opts: Options;
  machine: { nproc: number; cpuModel: string; node: string; platform: string; memoryGb: number };
  results: ScenarioResult[];
  profiles: ProfileResult[];
  probes: StoreProbe[];
  startedAt: Date;
  elapsedS: number;
  payload: string;
  batchItems: number;
  duplicateP: number;
}

export interface Target {
  name: string;
  measured: number | null;
  goal: number;
  unit: string;
  kind: 'min' | 'max';
  pass: boolean | null;
}

const ENGINE_NAME: Record<Engine, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };
const CEILING_GOAL: Record<Engine, number> = { sqlite: 0.6, postgres: 0.45 };
const NAIVE_GOAL: Record<Engine, number> = { sqlite: 4, postgres: 2 };
/** Average cores busy outside the benchmark above which the report calls the machine noisy. */
const NOISY_CORES = 0.2;

function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function pct(x: number): string {
  return `${fmt(x * 100, 1)}%`;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function runsOf(results: ScenarioResult[], id: string): ScenarioResult[] {
  return results.filter((r) => r.scenario.id === id);
}

/** The run with the median req/s: its latencies, RSS and CPU split stand for the scenario. */
function representative(results: ScenarioResult[], id: string): ScenarioResult | undefined {
  const runs = [...runsOf(results, id)].sort((a, b) => a.reqPerSec - b.reqPerSec);
  return runs[Math.floor((runs.length - 1) / 2)];
}

function medianReqPerSec(results: ScenarioResult[], id: string): number | null {
  return median(runsOf(results, id).map((r) => r.reqPerSec));
}

/** a / b within each round that measured both: numbers taken back to back, under about the same background load. */
function roundRatios(results: ScenarioResult[], a: string, b: string, value: (r: ScenarioResult) => number | null = (r) => r.reqPerSec): number[] {
  const out: number[] = [];
  for (const x of runsOf(results, a)) {
    const y = results.find((r) => r.scenario.id === b && r.round === x.round);
    const vx = value(x);
    const vy = y === undefined ? null : value(y);
    if (vx !== null && vy !== null && vy > 0) out.push(vx / vy);
  }
  return out;
}

/** The round in which `id` and the ceiling saw the least work from outside the benchmark. */
function quietestRound(results: ScenarioResult[], id: string): { single: ScenarioResult; ceiling: ScenarioResult; other: number } | null {
  let best: { single: ScenarioResult; ceiling: ScenarioResult; other: number } | null = null;
  for (const single of runsOf(results, id)) {
    const ceiling = results.find((r) => r.scenario.id === 'ceiling' && r.round === single.round);
    if (ceiling === undefined || single.cpu === null || ceiling.cpu === null) continue;
    const other = Math.max(single.cpu.other, ceiling.cpu.other);
    if (best === null || other < best.other) best = { single, ceiling, other };
  }
  return best;
}

/** Server CPU (all its threads) per item answered: what a request costs, whatever else ran on the box. */
function cpuUsPerItem(r: ScenarioResult): number | null {
  return r.cpu === null || r.tracesPerSec <= 0 ? null : (r.cpu.server * 1e6) / r.tracesPerSec;
}

export function targets(results: ScenarioResult[]): Target[] {
  const t = (name: string, measured: number | null, goal: number, unit: string, kind: 'min' | 'max' = 'min'): Target => ({
    name, measured, goal, unit, kind,
    pass: measured === null ? null : kind === 'min' ? measured >= goal : measured <= goal,
  });
  const rss = results.filter((r) => r.scenario.server !== 'ceiling' && r.peakRssMb !== null).map((r) => r.peakRssMb!);
  return [
    t('SQLite single trace vs ceiling', median(roundRatios(results, 'sqlite-single', 'ceiling')), CEILING_GOAL.sqlite, 'x'),
    t('PostgreSQL single trace vs ceiling', median(roundRatios(results, 'postgres-single', 'ceiling')), CEILING_GOAL.postgres, 'x'),
    t('SQLite single trace vs naive', median(roundRatios(results, 'sqlite-single', 'sqlite-naive')), NAIVE_GOAL.sqlite, 'x'),
    t('PostgreSQL single trace vs naive', median(roundRatios(results, 'postgres-single', 'postgres-naive')), NAIVE_GOAL.postgres, 'x'),
    t('SQLite batch ingest, random (v4) ids', median(runsOf(results, 'sqlite-batch').map((r) => r.tracesPerSec)), 100_000, 'traces/s'),
    t('SQLite batch ingest, UUIDv7 ids (as @panopticon/sdk sends)', median(runsOf(results, 'sqlite-batch-v7').map((r) => r.tracesPerSec)), 100_000, 'traces/s'),
    t('Peak RSS of the server under load (worst scenario)', rss.length > 0 ? Math.max(...rss) : null, 250, 'MB', 'max'),
  ];
}

/** Cores kept busy outside the benchmark (other users, kernel threads) during the measured windows. */
export function backgroundLoad(results: ScenarioResult[]): { mean: number; max: number } | null {
  const others = results.map((r) => r.cpu?.other).filter((v): v is number => v !== undefined);
  if (others.length === 0) return null;
  return { mean: others.reduce((a, b) => a + b, 0) / others.length, max: Math.max(...others) };
}

function verdict(t: Target): string {
  return t.pass === null ? 'n/a (not run)' : t.pass ? '**PASS**' : '**MISS**';
}

function statusText(r: ScenarioResult): string {
  return Object.entries(r.status)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, n]) => `${code}: ${fmt(n)}`)
    .join(', ');
}

function errorCounts(r: ScenarioResult): { c4: number; c5: number } {
  let c4 = 0;
  let c5 = 0;
  for (const [code, n] of Object.entries(r.status)) {
    if (code.startsWith('4')) c4 += n;
    if (code.startsWith('5')) c5 += n;
  }
  return { c4, c5 };
}

function cpuText(r: ScenarioResult): string {
  return r.cpu === null
    ? 'n/a'
    : `${fmt(r.cpu.server, 2)} / ${fmt(r.cpu.loadgen, 2)} / ${fmt(r.cpu.postgres, 2)} / ${fmt(r.cpu.other, 2)} / ${fmt(r.cpu.idle, 2)}`;
}

function rowsPerCommit(commits: number | null, rows: number | null): string {
  return commits && rows !== null ? fmt(rows / commits, 1) : 'n/a';
}

function profileName(p: ProfileResult): string {
  return p.engine === null ? 'Ceiling' : `${ENGINE_NAME[p.engine]}${p.load === 'batch100' ? ' batch' : ''}`;
}

/** Self time per trace, by module, without idle: of the main thread, or of the worker threads. */
function perTraceUs(p: ProfileResult, thread: 'main' | 'workers' = 'main'): Map<string, number> {
  const m = new Map<string, number>();
  if (p.traces <= 0) return m;
  for (const summary of thread === 'main' ? [p.summary] : p.workers) {
    for (const mod of summary.modules) {
      if (mod.module !== 'idle (waiting for I/O)') m.set(mod.module, (m.get(mod.module) ?? 0) + (mod.selfMs * 1000) / p.traces);
    }
  }
  return m;
}

function singleProfile(profiles: ProfileResult[], engine: Engine | null): ProfileResult | undefined {
  return profiles.find((p) => p.engine === engine && p.load === 'unique');
}

function sum(m: Map<string, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}

function analysis(input: ReportInput, tg: Target[]): string[] {
  const { results, profiles, machine, opts } = input;
  const out: string[] = [];
  const bg = backgroundLoad(results);
  out.push(
    `- **The box.** ${machine.nproc} cores carry the load generator (autocannon, one event loop), the server under test (for SQLite, its main ` +
      'thread and the commit worker) and, for PostgreSQL, the database\'s backends, WAL writer and fsyncs' +
      (bg !== null && bg.mean >= NOISY_CORES ? `, and in this run other users' work as well (${fmt(bg.mean, 2)} cores on average)` : '') +
      '. The ceiling is "what one Node process can answer while sharing the machine with the load generator", and every ratio is against it. ' +
      '"Server CPU per trace" (all threads of the server process, from /proc) is the number least disturbed by the neighbours: ' +
      'it says what a request costs, not how much CPU was left over for it.',
  );
  const ceilingProf = singleProfile(profiles, null);
  for (const engine of ['sqlite', 'postgres'] as const) {
    const single = representative(results, `${engine}-single`);
    const ratios = roundRatios(results, `${engine}-single`, 'ceiling');
    if (!single || ratios.length === 0) continue;
    const name = ENGINE_NAME[engine];
    const goal = CEILING_GOAL[engine];
    const r = median(ratios)!;
    const cpuRatio = median(roundRatios(results, 'ceiling', `${engine}-single`, cpuUsPerItem));
    let text = `- **${name}, single trace: ${fmt(r, 2)}x the ceiling (median of ${ratios.length} round${ratios.length === 1 ? '' : 's'}: ${ratios.map((x) => fmt(x, 2)).join(', ')}; target ${goal}x).** `;
    text += `Group commit wrote ${rowsPerCommit(single.commits, single.rows)} rows per commit`;
    if (single.commits && single.durationS > 0) text += ` (${fmt(single.commits / single.durationS)} commits/s)`;
    text += '. ';
    if (cpuRatio !== null) {
      text +=
        `Per request the server process used ${fmt(cpuUsPerItem(single), 0)} µs of CPU (all threads${engine === 'postgres' ? ', PostgreSQL\'s own processes not included' : ''}) ` +
        `against the ceiling's ${fmt(cpuUsPerItem(representative(results, 'ceiling')!), 0)} µs: a ratio of ${fmt(cpuRatio, 2)} (median over rounds), which is the throughput ratio to expect ` +
        'where CPU is the only limit. ';
    }
    const prof = singleProfile(profiles, engine);
    let extras: Array<{ m: string; d: number }> = [];
    if (prof) {
      text += `Under the profiler the main thread was idle ${pct(prof.summary.idleShare)} of the window`;
      const worker = prof.workers[0];
      if (worker !== undefined) text += `, the commit worker ${pct(worker.idleShare)} (${fmt(sum(perTraceUs(prof, 'workers')), 1)} µs per trace in statements and commits, fsync waits included)`;
      text += '. ';
      if (ceilingProf) {
        const mine = perTraceUs(prof);
        const base = perTraceUs(ceilingProf);
        extras = [...new Set([...mine.keys(), ...base.keys()])]
          .map((m) => ({ m, d: (mine.get(m) ?? 0) - (base.get(m) ?? 0) }))
          .filter((x) => x.d > 0.5)
          .sort((a, b) => b.d - a.d)
          .slice(0, 5);
        text +=
          `Main-thread time per request: ${fmt(sum(mine), 1)} µs against the ceiling's ${fmt(sum(base), 1)} µs; the extra is mostly ` +
          extras.map((x) => `${x.m} +${fmt(x.d, 1)} µs`).join(', ') + '. ';
      }
    }
    const quiet = quietestRound(results, `${engine}-single`);
    if (quiet !== null && ratios.length > 1) {
      text +=
        `In the quietest round (round ${quiet.single.round}, at most ${fmt(quiet.other, 2)} cores busy outside the benchmark) the ratio was ${fmt(quiet.single.reqPerSec / quiet.ceiling.reqPerSec, 2)}x ` +
        `(${fmt(quiet.single.reqPerSec)} vs ${fmt(quiet.ceiling.reqPerSec)} req/s, p50 ${fmt(quiet.single.p50Ms)} vs ${fmt(quiet.ceiling.p50Ms)} ms), with the server process on ${fmt(quiet.single.cpu!.server, 2)} cores` +
        (engine === 'postgres' ? `, PostgreSQL on ${fmt(quiet.single.cpu!.postgres, 2)}` : '') +
        ` and ${fmt(quiet.single.cpu!.idle, 2)} of ${machine.nproc} cores idle. `;
    }
    const target = tg.find((t) => t.name === `${name} single trace vs ceiling`);
    if (target?.pass === true && cpuRatio !== null && cpuRatio < goal) {
      text +=
        `**The pass rests on the server not being CPU-bound in this run:** by CPU per request (${fmt(cpuRatio, 2)}x) a server that is saturated would not reach ${goal}x; ` +
        'the profile tables show where that CPU goes. ';
    }
    if (target?.pass === false && quiet !== null && quiet.ceiling.cpu && quiet.single.cpu && quiet.ceiling.reqPerSec > 0) {
      // What the target leaves the server: at the target rate the load generator needs its own
      // CPU per request (measured against the ceiling), and the rest of the cores is all there is.
      const rate = goal * quiet.ceiling.reqPerSec;
      const loadgenUs = (quiet.ceiling.cpu.loadgen / quiet.ceiling.reqPerSec) * 1e6;
      const left = machine.nproc - (loadgenUs * rate) / 1e6 - quiet.single.cpu.other;
      const budgetUs = (left / rate) * 1e6;
      const spentUs = ((quiet.single.cpu.server + (engine === 'postgres' ? quiet.single.cpu.postgres : 0)) / quiet.single.reqPerSec) * 1e6;
      text +=
        `**CPU budget at the target:** ${goal}x is ${fmt(rate)} req/s; at that rate the load generator alone needs ${fmt((loadgenUs * rate) / 1e6, 2)} of the ${machine.nproc} cores ` +
        `(${fmt(loadgenUs, 1)} µs per request, measured against the ceiling), which leaves ${fmt(left, 2)} cores: at most ${fmt(budgetUs, 0)} µs of CPU per trace for the server` +
        (engine === 'postgres' ? ' and PostgreSQL together' : ' (main thread and commit worker together)') +
        `. It spent ${fmt(spentUs, 0)} µs per trace in that round, so ` +
        (spentUs > budgetUs
          ? `even with no idle core at all the target would need ${fmt((1 - budgetUs / spentUs) * 100, 0)}% less CPU per durable trace; `
          : 'the CPU would suffice if no core sat idle; ') +
        'the profile tables above show where that CPU goes. ';
    }
    if (target?.pass === false) {
      text += `**Why the target is missed, and what would reach it:** `;
      if (quiet !== null && quiet.single.cpu!.idle >= 0.2) {
        text +=
          `in the quietest round cores were left idle: the server was waiting, not short of CPU. With ${opts.connections} connections each waiting for the durable commit of its own row, ` +
          'throughput is connections divided by latency, and latency is the group commit cycle (' +
          `${rowsPerCommit(quiet.single.commits, quiet.single.rows)} rows per commit, ${engine === 'sqlite' ? 'the commit worker taking every batch waiting on its port into its next transaction' : 'up to 2 commits in flight'}). ` +
          (cpuRatio !== null
            ? `Its CPU per request allows about ${fmt(cpuRatio, 2)}x when CPU-bound, so ${cpuRatio >= goal ? 'a shorter commit cycle alone would reach the target' : 'a shorter commit cycle and less CPU per request are both needed'}: ` +
              'the main-thread extras listed above, and a commit that costs less per row. '
            : '');
      } else if (cpuRatio !== null && cpuRatio >= goal) {
        text +=
          `the CPU cost per request is within the target (${fmt(cpuRatio, 2)}x), so the gap is the share of the ${machine.nproc} cores the server got: ` +
          (engine === 'sqlite'
            ? 'the commit worker\'s thread (statement execution, WAL page writes, fsync wait) competes with the main thread and the load generator, '
            : 'PostgreSQL\'s backends and WAL writer compete with the server and the load generator, ') +
          (bg !== null && bg.mean >= NOISY_CORES ? `and other users kept ${fmt(bg.mean, 2)} cores busy on average. ` : '. ') +
          'A run on a quiet machine, or with the load generator and database on cores of their own, is what would show the ratio the CPU cost allows. ';
      } else {
        const worker = prof?.workers[0] === undefined ? null : sum(perTraceUs(prof, 'workers'));
        text +=
          'the server spends more CPU per request than the target allows' +
          (extras.length > 0 ? `: on the main thread beyond the ceiling mostly ${extras.slice(0, 3).map((x) => x.m).join(', ')} (per-module table above)` : '') +
          (worker !== null ? `, and the commit worker's statements and commits (${fmt(worker, 1)} µs per trace under the profiler) share the same cores` : '') +
          (engine === 'postgres' ? ', and PostgreSQL\'s backends compete for the same cores' : '') +
          '. Taking that work off these cores (a machine where the server, the database and the load generator do not share two cores) or making it cheaper is what would reach it. ';
      }
    }
    out.push(text);
  }
  for (const engine of ['sqlite', 'postgres'] as const) {
    const ratios = roundRatios(results, `${engine}-single`, `${engine}-naive`);
    const single = representative(results, `${engine}-single`);
    const naive = representative(results, `${engine}-naive`);
    if (!single || !naive || ratios.length === 0) continue;
    out.push(
      `- **${ENGINE_NAME[engine]} vs the naive design:** ${fmt(median(ratios), 1)}x (per round: ${ratios.map((x) => fmt(x, 1)).join(', ')}). ` +
        `The naive server pays one durable commit per request (${rowsPerCommit(naive.commits, naive.rows)} rows/commit)` +
        (engine === 'sqlite' ? ', on the main thread, as the simplest design does' : '') +
        `; its p99 is ${fmt(naive.p99Ms)} ms vs ${fmt(single.p99Ms)} ms with group commit.`,
    );
  }
  const batch = representative(results, 'sqlite-batch');
  if (batch) {
    const prof = profiles.find((p) => p.engine === 'sqlite' && p.load === 'batch100');
    let text =
      `- **SQLite batch:** ${fmt(batch.tracesPerSec)} traces/s (${fmt(batch.reqPerSec)} req/s of ${input.batchItems} items, ${rowsPerCommit(batch.commits, batch.rows)} rows per commit, ` +
      `${fmt(cpuUsPerItem(batch), 1)} µs of server CPU per trace, all threads). Per item the main thread parses JSON, validates the item with AJV and prepares the row; the commit worker ` +
      'inserts it (a B-tree insert into the table, the random-UUID unique index and the timeline index) and writes the dirty pages to the WAL. ';
    if (prof) {
      const main = sum(perTraceUs(prof));
      const worker = sum(perTraceUs(prof, 'workers'));
      text +=
        `Under the profiler: main thread ${fmt(main, 1)} µs busy per trace (idle ${pct(prof.summary.idleShare)}), commit worker ${fmt(worker, 1)} µs per trace in statements and commits, fsync waits included` +
        (prof.workers[0] ? ` (idle ${pct(prof.workers[0].idleShare)})` : '') +
        `; one thread at ${fmt(Math.max(main, worker), 1)} µs per trace caps the pipeline at ${fmt(1e6 / Math.max(main, worker, 1e-9))} traces/s even with a core to itself. `;
    }
    if (batch.tracesPerSec < 100_000) {
      text +=
        '**Why the target is missed, and what would reach it:** with random (v4) event_ids almost every row lands on its own leaf of the unique index, so a commit dirties about one 4 KB page per row, ' +
        'writes it to the WAL and later copies it into the database at checkpoint. ';
      const random = median(input.probes.filter((p) => p.ids === 'random (v4)').map((p) => p.tracesPerSec));
      const ordered = median(input.probes.filter((p) => p.ids !== 'random (v4)').map((p) => p.tracesPerSec));
      if (random !== null && ordered !== null) {
        text +=
          `The store alone (no HTTP, same commit worker, 500-row commits; table under Results) commits ${fmt(random)} traces/s with random ids and ${fmt(ordered)} with time-ordered ones ` +
          `(UUIDv7, which a client may send): ${random < 100_000 ? 'with random ids the commit path by itself is below the target, before any HTTP work. ' : ''}`;
      }
      text +=
        'The rest is the machine: the load generator (building 100 UUIDs and a 30 KB body per request), the main thread and the commit worker share the same cores' +
        (bg !== null && bg.mean >= NOISY_CORES ? ` with ${fmt(bg.mean, 2)} cores of other users' work` : '') +
        '. 100k traces/s needs ids that append to the index (or an index that random ids do not scatter) and a core for the commit worker.';
    }
    out.push(text);
  }
  for (const engine of ['sqlite', 'postgres'] as const) {
    const v7 = representative(results, `${engine}-batch-v7`);
    const v4 = representative(results, `${engine}-batch`);
    if (!v7) continue;
    out.push(
      `- **${ENGINE_NAME[engine]} batch with UUIDv7 ids** (what @panopticon/sdk sends unless told otherwise): ${fmt(v7.tracesPerSec)} traces/s` +
        (v4 ? ` against ${fmt(v4.tracesPerSec)} with random ids (${fmt(v7.tracesPerSec / v4.tracesPerSec, 2)}x)` : '') +
        `, ${rowsPerCommit(v7.commits, v7.rows)} rows per commit, ${fmt(cpuUsPerItem(v7), 1)} µs of server CPU per trace: ids that sort by time append to the idempotency index instead of dirtying a page of it per row.`,
    );
  }
  const pgBatch = representative(results, 'postgres-batch');
  if (pgBatch) {
    out.push(`- **PostgreSQL batch:** ${fmt(pgBatch.tracesPerSec)} traces/s (${rowsPerCommit(pgBatch.commits, pgBatch.rows)} rows per commit, one statement per commit, the rows as one json_to_recordset() parameter).`);
  }
  const rss = tg.find((t) => t.name.startsWith('Peak RSS'));
  if (rss && rss.measured !== null) {
    out.push(`- **Memory:** the largest peak RSS of a server process was ${fmt(rss.measured)} MB (target <= 250 MB); the writer's queue is bounded (100,000 rows), so RSS does not grow with backlog.`);
  }
  if (opts.rounds === 1 && !opts.smoke) out.push('- **One round only** (`--rounds 1`): each ratio rests on a single pair of measurements.');
  return out;
}

export function renderReport(input: ReportInput): { markdown: string; console: string } {
  const { opts, machine, results, profiles } = input;
  const tg = targets(results);
  const bg = backgroundLoad(results);
  const ids = [...new Set(results.map((r) => r.scenario.id))];
  const md: string[] = [];
  md.push('# Ingest benchmark');
  md.push('');
  md.push(
    `Generated by \`npm run bench\`${opts.smoke ? ' **in --smoke mode (short runs, fewer scenarios: not representative)**' : ''} ` +
      `on ${input.startedAt.toISOString()}; the run took ${fmt(input.elapsedS, 0)} s. Do not edit by hand: rerun \`npm run bench\`.`,
  );
  if (bg !== null && bg.mean >= NOISY_CORES) {
    md.push('');
    md.push(
      `> **Shared, busy machine.** During the measured windows, processes outside this benchmark (other users' builds and tests, kernel threads) ` +
        `kept on average ${fmt(bg.mean, 2)} of the ${machine.nproc} cores busy (up to ${fmt(bg.max, 2)} in one scenario). Absolute req/s are depressed ` +
        `and move from run to run; the targets use ratios taken within a round (the scenarios measured back to back) and the median over ` +
        `${opts.rounds} round${opts.rounds === 1 ? '' : 's'}, which cancels much of it but not all. Server CPU per trace is the steadier number.`,
    );
  }
  md.push('');
  md.push('## Machine');
  md.push('');
  md.push(`- CPU: ${machine.cpuModel}, ${machine.nproc} cores (nproc), ${fmt(machine.memoryGb, 1)} GB RAM`);
  md.push(`- Node ${machine.node}, ${machine.platform}`);
  md.push('- The load generator, the server under test and PostgreSQL all run on this machine, on loopback.');
  md.push('');
  md.push('## Method');
  md.push('');
  md.push(
    `- Load: autocannon 8 in the bench process, ${opts.connections} connections, pipelining 1, ${fmt(opts.durationS, 1)} s measured per scenario ` +
      `after ${fmt(opts.warmupS, 1)} s of warm-up against the same server (not counted).`,
  );
  md.push(
    `- Rounds: the scenarios that targets compare (ceiling, single trace, naive) run in ${opts.rounds} round${opts.rounds === 1 ? '' : 's'}, each round measuring ` +
      'all of them back to back; a ratio is taken within a round, and the table and targets give the median over rounds. The other scenarios run once.',
  );
  md.push(
    '- Each scenario gets a fresh server child process (`bench/server.ts`) with a fresh store (a new SQLite file in WAL mode with synchronous=FULL, or a new ' +
      'PostgreSQL schema with synchronous_commit=on), the real server (`buildServer`) with logging off and the per-PAK rate limit raised to 10^9/s ' +
      '(the limiter still runs on every request), and one tenant with one PAK. Every 202/200 is sent after the commit containing its row returned.',
  );
  md.push('- CEILING: `bench/ceiling.ts`, a bare Fastify 5 route in its own process that validates the same body with the same TraceEvent schema through the same validatorCompiler and answers 202 with the same body: no auth, no rate limit, no store.');
  md.push('- NAIVE: the full server with its group commit replaced by `bench/naive-writer.ts`: one durable single-row commit per trace (for SQLite on the main thread, as the simplest design would).');
  md.push(`- Payload (${Buffer.byteLength(input.payload)} bytes), a fresh UUID per request:`);
  md.push('');
  md.push('  ```json');
  md.push(`  ${input.payload}`);
  md.push('  ```');
  md.push('');
  md.push(`- 30% duplicates: with p=${input.duplicateP} a request resends one of the last 4,096 event_ids sent (answered 200 duplicate), otherwise a fresh one.`);
  md.push(`- Batch: \`POST /panopticon/traces\` with \`{"traces":[...]}\` of ${input.batchItems} such items (about ${fmt((Buffer.byteLength(input.payload) + 1) * input.batchItems / 1024, 0)} KB), all fresh ids: random (v4) from crypto.randomUUID(), or, in the UUIDv7 scenarios, from \`uuidv7()\` of @panopticon/sdk (what its \`trace()\` fills in); traces/s counts items.`);
  const reset = results.every((r) => r.peakRssReset);
  const setupPeaks = results.map((r) => r.setupPeakRssMb).filter((v): v is number => v !== null);
  md.push(
    '- Peak RSS: VmHWM of the server process from /proc/<pid>/status at the end of the scenario, warm-up included. ' +
      (reset
        ? 'It is reset (`echo 5 > /proc/<pid>/clear_refs`) once the server is set up, so it is the peak under load: creating the tenant hashes a password ' +
          `with scrypt (N=2^17, r=8, 128 MB for a moment), which alone peaks at ${fmt(Math.max(...setupPeaks))} MB before the load starts.`
        : 'It could not be reset after set-up here, so it includes the tenant creation\'s scrypt password hash (128 MB for a moment).'),
  );
  md.push(
    '- Cores: average cores busy during the measured window, from /proc: the server process (all its threads), the load generator (this process), ' +
      'PostgreSQL\'s processes (which may also serve other users of the database), everything else (other users of the machine, kernel threads) and idle. ' +
      'Server CPU per trace divides the server\'s cores by traces/s.',
  );
  md.push('- Rows/commit: trace transactions committed and their rows during the measured window, read by SIGUSR2 before and after: on SQLite the commit worker\'s own count (`store.traces.commitStats`, as it merges the writer\'s batches), on PostgreSQL the writer\'s (`services.writer.stats`).');
  md.push('');
  md.push('## Results');
  md.push('');
  md.push(
    'One row per scenario; where it ran in several rounds, req/s is the median, peak RSS the largest of any round, the other columns are those of the median round, and "req/s by round" lists every round.',
  );
  md.push('');
  md.push('| scenario | engine | req/s | traces/s | p50 ms | p99 ms | non-2xx | 4xx | 5xx | errors/timeouts | responses by status | peak RSS MB (load) | rows/commit | server CPU µs/trace | cores: server / loadgen / postgres / other / idle | req/s by round |');
  md.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |');
  for (const id of ids) {
    const r = representative(results, id)!;
    const runs = runsOf(results, id);
    const { c4, c5 } = errorCounts(r);
    const nonOk = runs.reduce((a, x) => a + x.non2xx, 0);
    md.push(
      `| ${r.scenario.label} | ${r.scenario.engine ? ENGINE_NAME[r.scenario.engine] : '-'} | ${fmt(medianReqPerSec(results, id))} | ${fmt(median(runs.map((x) => x.tracesPerSec)))} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ` +
        `${fmt(nonOk)} | ${fmt(c4)} | ${fmt(c5)} | ${fmt(r.errors)}/${fmt(r.timeouts)} | ${statusText(r)} | ${fmt(Math.max(...runs.map((x) => x.peakRssMb ?? Number.NaN)))} | ` +
        `${rowsPerCommit(r.commits, r.rows)} | ${fmt(cpuUsPerItem(r), 1)} | ${cpuText(r)} | ${runs.map((x) => fmt(x.reqPerSec)).join(', ')} |`,
    );
  }
  const dup = ids.map((id) => representative(results, id)!).filter((r) => r.scenario.load === 'dup30');
  if (dup.length > 0) {
    md.push('');
    md.push(
      'In the duplicate scenarios a 200 is the expected answer to a resend: ' +
        dup.map((r) => `${ENGINE_NAME[r.scenario.engine!]} sent ${fmt(r.duplicatesSent)} resends and got ${fmt(r.status['200'] ?? 0)} 200s`).join('; ') +
        ' (a resend of an id whose first request is still in the same commit can be answered either way, so the counts need not match exactly).',
    );
  }
  md.push('');
  md.push('### Ratios');
  md.push('');
  md.push(
    'Within each round, then the median. "CPU cost" is the ceiling\'s server CPU per request divided by ours: the throughput ratio to expect where CPU is the only limit (informative, not a target).',
  );
  md.push('');
  md.push('| engine | single trace req/s | ceiling req/s | vs ceiling, per round | **vs ceiling** | CPU cost vs ceiling | naive req/s | vs naive, per round | **vs naive** |');
  md.push('| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |');
  for (const engine of ['sqlite', 'postgres'] as const) {
    const id = `${engine}-single`;
    if (runsOf(results, id).length === 0) continue;
    const vsCeiling = roundRatios(results, id, 'ceiling');
    const vsNaive = roundRatios(results, id, `${engine}-naive`);
    const cpu = roundRatios(results, 'ceiling', id, cpuUsPerItem);
    md.push(
      `| ${ENGINE_NAME[engine]} | ${fmt(medianReqPerSec(results, id))} | ${fmt(medianReqPerSec(results, 'ceiling'))} | ${vsCeiling.map((x) => fmt(x, 2)).join(', ') || 'n/a'} | ` +
        `**${fmt(median(vsCeiling), 2)}x** | ${fmt(median(cpu), 2)}x | ${fmt(medianReqPerSec(results, `${engine}-naive`))} | ${vsNaive.map((x) => fmt(x, 1)).join(', ') || 'n/a'} | **${fmt(median(vsNaive), 1)}x** |`.replace(/n\/ax/g, 'n/a'),
    );
  }
  if (input.probes.length > 0) {
    md.push('');
    md.push('### SQLite store alone');
    md.push('');
    md.push(
      'No HTTP: rows built in advance and committed through `store.traces.insert` on SQLite (the commit worker, synchronous=FULL) into a fresh file, ' +
        'alternating the kind of event_id, to show what the commit path alone sustains.',
    );
    md.push('');
    md.push('| event_id | rows | rows/commit | traces/s |');
    md.push('| --- | ---: | ---: | ---: |');
    for (const p of input.probes) md.push(`| ${p.ids} | ${fmt(p.rows)} | ${fmt(p.rowsPerCommit)} | ${fmt(p.tracesPerSec)} |`);
  }
  md.push('');
  md.push('## Targets');
  md.push('');
  md.push('| target | measured | goal | result |');
  md.push('| --- | ---: | ---: | --- |');
  for (const t of tg) {
    const digits = t.unit === 'x' ? 2 : 0;
    md.push(`| ${t.name} | ${fmt(t.measured, digits)} ${t.unit} | ${t.kind === 'min' ? '>=' : '<='} ${fmt(t.goal, digits)} ${t.unit} | ${verdict(t)} |`);
  }
  md.push('');
  md.push('## Where the time goes');
  md.push('');
  if (profiles.length === 0) {
    md.push('Not profiled in this run (`--no-profile`).');
  } else {
    md.push(
      `The ceiling, the single-trace scenario once more per engine and SQLite batch ingest, each with the server started as \`node --cpu-prof\` (${fmt(profiles[0]!.durationS, 1)} s after the same warm-up; ` +
        'only the samples of the measured window are counted, using the profile\'s monotonic timestamps). Self time of the server\'s main thread; ' +
        'V8 profiles each thread on its own, so the SQLite commit worker has its own row and tables (its time is wall time: a sample taken while it waits in fsync counts as busy); ' +
        '"idle" is time the event loop waited for sockets, the commit worker or the database. Native/builtins are V8 builtins and C++ bindings ' +
        '(socket writes, JSON.parse, postMessage).',
    );
    md.push('');
    md.push('### Per trace, main thread, by module (µs)');
    md.push('');
    md.push('For single-trace scenarios a trace is a request; the batch column divides by the traces (100 per request).');
    md.push('');
    const tables = profiles.map((p) => ({ p, m: perTraceUs(p) }));
    const modules = [...new Set(tables.flatMap((t) => [...t.m.keys()]))].sort(
      (a, b) => Math.max(...tables.map((t) => t.m.get(b) ?? 0)) - Math.max(...tables.map((t) => t.m.get(a) ?? 0)),
    );
    md.push(`| module | ${tables.map((t) => profileName(t.p)).join(' | ')} |`);
    md.push(`| --- | ${tables.map(() => '---:').join(' | ')} |`);
    for (const mod of modules) md.push(`| ${mod} | ${tables.map((t) => fmt(t.m.get(mod), 1)).join(' | ')} |`);
    md.push(`| **total (busy)** | ${tables.map((t) => `**${fmt(sum(t.m), 1)}**`).join(' | ')} |`);
    md.push(`| idle share of the window | ${tables.map((t) => pct(t.p.summary.idleShare)).join(' | ')} |`);
    md.push(`| commit worker thread: µs per trace in statements and commits, fsync waits included (idle share) | ${tables.map((t) => (t.p.workers.length === 0 ? '-' : `${fmt(sum(perTraceUs(t.p, 'workers')), 1)} (${pct(t.p.workers[0]!.idleShare)})`)).join(' | ')} |`);
    md.push(`| req/s under the profiler | ${tables.map((t) => fmt(t.p.reqPerSec)).join(' | ')} |`);
    for (const p of profiles) {
      md.push('');
      md.push(`### ${profileName(p)}`);
      md.push('');
      md.push(
        `${fmt(p.reqPerSec)} req/s under the profiler; ${fmt(p.summary.samples)} samples over ${fmt(p.summary.totalMs)} ms${p.summary.windowed ? '' : ' (whole process lifetime: the window could not be matched)'}` +
          (p.engine === null ? '.' : `; commits: ${fmt(p.commits)} commits, ${fmt(p.rows)} rows = **${rowsPerCommit(p.commits, p.rows)} rows per commit**.`),
      );
      md.push('');
      md.push('| # | function | where | module | self ms | share |');
      md.push('| ---: | --- | --- | --- | ---: | ---: |');
      p.summary.functions.forEach((f, i) => {
        md.push(`| ${i + 1} | \`${f.name}\` | ${f.where === '' ? '(native)' : `\`${f.where}\``} | ${f.module} | ${fmt(f.selfMs)} | ${pct(f.share)} |`);
      });
      p.workers.forEach((w, k) => {
        md.push('');
        md.push(`Commit worker thread${p.workers.length > 1 ? ` ${k + 1}` : ''}: idle ${pct(w.idleShare)} of the window. Statement execution, page writes and fsync are native code inside better-sqlite3's calls, so they appear as the self time of the JS function that made the call.`);
        md.push('');
        md.push('| # | function | where | module | self ms | share |');
        md.push('| ---: | --- | --- | --- | ---: | ---: |');
        w.functions.slice(0, 8).forEach((f, i) => {
          md.push(`| ${i + 1} | \`${f.name}\` | ${f.where === '' ? '(native)' : `\`${f.where}\``} | ${f.module} | ${fmt(f.selfMs)} | ${pct(f.share)} |`);
        });
      });
    }
  }
  md.push('');
  md.push('### Writer: rows per commit');
  md.push('');
  md.push('| scenario | engine | round | commits | rows | rows/commit |');
  md.push('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    if (r.commits === null) continue;
    md.push(`| ${r.scenario.label} | ${ENGINE_NAME[r.scenario.engine!]} | ${r.round} | ${fmt(r.commits)} | ${fmt(r.rows)} | ${rowsPerCommit(r.commits, r.rows)} |`);
  }
  md.push('');
  md.push('## What limits it, and what would reach a missed target');
  md.push('');
  md.push(...analysis(input, tg));
  md.push('');

  const con: string[] = [];
  for (const r of results) {
    con.push(
      `${`${r.scenario.id}#${r.round}`.padEnd(18)} ${fmt(r.reqPerSec).padStart(8)} req/s ${fmt(r.tracesPerSec).padStart(9)} traces/s  p50 ${fmt(r.p50Ms)} ms  p99 ${fmt(r.p99Ms)} ms  ` +
        `non-2xx ${r.non2xx}  rss ${fmt(r.peakRssMb)} MB  rows/commit ${rowsPerCommit(r.commits, r.rows)}  cpu ${fmt(cpuUsPerItem(r), 1)} µs/trace  cores ${cpuText(r)}`,
    );
  }
  if (bg !== null) con.push(`cores busy outside the benchmark: mean ${fmt(bg.mean, 2)}, max ${fmt(bg.max, 2)}`);
  for (const t of tg) {
    const digits = t.unit === 'x' ? 2 : 0;
    con.push(`${t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'MISS'} ${t.name}: ${fmt(t.measured, digits)} ${t.unit} (goal ${t.kind === 'min' ? '>=' : '<='} ${fmt(t.goal, digits)} ${t.unit})`);
  }
  return { markdown: `${md.join('\n')}\n`, console: con.join('\n') };
}
