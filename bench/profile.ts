/**
 * Reads a V8 .cpuprofile (what `node --cpu-prof` writes) and says where the time went: self time
 * per function and per module, optionally only for the samples inside a time window (the measured
 * part of a benchmark run, without start-up and warm-up).
 */
import fs from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber?: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface FunctionCost {
  name: string;
  where: string;
  module: string;
  selfMs: number;
  share: number;
}

export interface ModuleCost {
  module: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of the window the main thread was idle (waiting on I/O: sockets, PostgreSQL). */
  idleShare: number;
  samples: number;
  windowed: boolean;
  functions: FunctionCost[];
  modules: ModuleCost[];
}

const SPECIAL: Record<string, string> = {
  '(idle)': 'idle (waiting for I/O)',
  '(program)': 'V8/native, unattributed',
  '(garbage collector)': 'garbage collector',
  '(root)': 'V8/native, unattributed',
};

const FASTIFY_PACKAGES = new Set([
  'fastify', 'find-my-way', 'avvio', 'fast-json-stringify', 'light-my-request', 'secure-json-parse', 'fast-querystring',
  'toad-cache', 'abstract-logging', 'process-warning', 'rfdc', 'fast-decode-uri-component', 'ret', 'safe-regex2',
  'pino', 'pino-std-serializers', 'sonic-boom', 'thread-stream', 'on-exit-leak-free', 'quick-format-unescaped',
  'atomic-sleep', 'safe-stable-stringify', 'fast-redact', 'real-require', 'json-schema-ref-resolver', 'dequal',
  'content-type', 'cookie', 'fastify-plugin', 'semver', 'proxy-addr', 'forwarded', 'ipaddr.js', 'fast-content-type-parse',
]);
const PG_PACKAGES = new Set(['pg', 'pg-protocol', 'pg-pool', 'pg-types', 'pg-connection-string', 'pgpass', 'postgres-array', 'postgres-bytea', 'postgres-date', 'postgres-interval', 'pg-int8', 'split2', 'buffer-writer', 'packet-reader']);
const AJV_PACKAGES = new Set(['ajv', 'ajv-formats', 'fast-uri', 'fast-deep-equal', 'json-schema-traverse', 'require-from-string']);

/** A module bucket for a call frame: node internals, fastify (and its own dependencies), ajv, the store driver, our code. */
export function moduleOf(frame: CallFrame): string {
  const special = SPECIAL[frame.functionName];
  if (special !== undefined && frame.url === '') return special;
  const url = frame.url;
  if (url === '') {
    // Native functions (C++ bindings, V8 builtins) and code compiled at run time (AJV validators).
    if (/^validate\d*$/.test(frame.functionName)) return 'ajv (compiled validators)';
    return 'native/builtins';
  }
  if (url.startsWith('node:') || !url.includes('/')) return 'node internals';
  const nm = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm !== null) {
    const pkg = nm[1]!;
    if (pkg.startsWith('@fastify/')) return pkg === '@fastify/rate-limit' ? '@fastify/rate-limit' : 'fastify';
    if (FASTIFY_PACKAGES.has(pkg)) return 'fastify';
    if (PG_PACKAGES.has(pkg)) return 'pg';
    if (AJV_PACKAGES.has(pkg)) return 'ajv';
    return pkg;
  }
  const ours = /\/dist\/((?:src|bench)\/.*)$/.exec(url);
  if (ours !== null) return `our ${ours[1]!.split('/').slice(0, 2).join('/')}`;
  return 'other';
}

function shortWhere(frame: CallFrame): string {
  if (frame.url === '') return '';
  let url = frame.url.replace(/^file:\/\//, '');
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) url = url.slice(nm + '/node_modules/'.length);
  else {
    const d = url.indexOf('/dist/');
    if (d >= 0) url = url.slice(d + '/dist/'.length);
  }
  return `${url}:${frame.lineNumber + 1}`;
}

/**
 * Self time per function and per module. With a window (µs, the profile's monotonic clock, which
 * is process.hrtime's), only samples inside it count; when none fall inside, all samples do.
 */
export function summariseProfile(profile: CpuProfile, window?: { fromUs: number; toUs: number }, top = 15): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  let windowed = false;
  let samples = 0;
  if (profile.samples !== undefined && profile.timeDeltas !== undefined && profile.samples.length > 0) {
    const s = profile.samples;
    const d = profile.timeDeltas;
    const times: number[] = new Array(s.length);
    let t = profile.startTime;
    for (let i = 0; i < s.length; i++) {
      t += d[i] ?? 0;
      times[i] = t;
    }
    const inWindow = (i: number) => window === undefined || (times[i]! >= window.fromUs && times[i]! <= window.toUs);
    let any = false;
    if (window !== undefined) for (let i = 0; i < s.length && !any; i++) any = inWindow(i);
    windowed = window !== undefined && any;
    for (let i = 0; i < s.length; i++) {
      if (windowed && !inWindow(i)) continue;
      // A sample stands for the time until the next one.
      const weight = i + 1 < s.length ? times[i + 1]! - times[i]! : (d[i] ?? 0);
      self.set(s[i]!, (self.get(s[i]!) ?? 0) + Math.max(0, weight));
      samples++;
    }
  } else {
    // Older format: hit counts only, at the default 1 ms interval.
    for (const n of profile.nodes) if (n.hitCount) self.set(n.id, n.hitCount * 1000);
  }

  let totalUs = 0;
  let idleUs = 0;
  const fn = new Map<string, FunctionCost>();
  const mod = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (node === undefined) continue;
    totalUs += us;
    const frame = node.callFrame;
    if (frame.functionName === '(idle)') idleUs += us;
    const module = moduleOf(frame);
    mod.set(module, (mod.get(module) ?? 0) + us);
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    const where = shortWhere(frame);
    const key = `${name}\u0000${where}`;
    const entry = fn.get(key) ?? { name, where, module, selfMs: 0, share: 0 };
    entry.selfMs += us / 1000;
    fn.set(key, entry);
  }
  const total = totalUs / 1000;
  const functions = [...fn.values()]
    .map((f) => ({ ...f, share: total > 0 ? f.selfMs / total : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, top);
  const modules = [...mod.entries()]
    .map(([module, us]) => ({ module, selfMs: us / 1000, share: totalUs > 0 ? us / totalUs : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs: total, idleShare: totalUs > 0 ? idleUs / totalUs : 0, samples, windowed, functions, modules };
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
}
