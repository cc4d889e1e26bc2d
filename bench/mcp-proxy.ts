/**
 * `npm run bench:mcp`: what `logi mcp proxy` adds to a relayed tools/call.
 *
 *   node dist/bench/mcp-proxy.js [--smoke] [--out docs/benchmarks-mcp.md]
 *
 * The official MCP client (this process) calls the `echo` tool of a minimal stdio MCP server
 * (bench/mcp-echo-server.ts), one call at a time, three ways:
 *   1. direct: the client launches the server;
 *   2. through the proxy with the guard off (`--no-guard`): relay, tool pinning lookup, trace
 *      buffering — what the proxy adds beyond the guard check;
 *   3. through the proxy with the guard on: plus one guard check per call.
 * and, as the reference for 3, the guard check alone (the SDK's `check()` from this process to the
 * same server). Panopticon runs as a child process on SQLite. The modes take turns in rounds so a
 * change of machine load touches them alike. Target: the proxy with the guard off adds at most
 * 1 ms p50 to a call.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createPanopticon } from '@panopticon/sdk';
import { createTenant, LOGI_BIN, spawnServer } from '../test/support/harness.js';

const smoke = process.argv.includes('--smoke');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1]! : 'docs/benchmarks-mcp.md';
const ROUNDS = smoke ? 1 : 5;
const CALLS_PER_ROUND = smoke ? 50 : 1000;
const WARMUP = smoke ? 10 : 200;
const ECHO_SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'mcp-echo-server.js');

type Mode = 'direct' | 'proxy, guard off' | 'proxy, guard on';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const ms = (v: number) => `${v.toFixed(3)} ms`;

async function connect(args: string[], env: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args, env: { PATH: process.env.PATH ?? '', ...env }, stderr: 'inherit' }));
  await client.listTools();
  return client;
}

async function timeCalls(client: Client, n: number, into: number[] | null): Promise<void> {
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const r = await client.callTool({ name: 'echo', arguments: { text: `call ${i}` } });
    const took = performance.now() - started;
    if (r.isError === true) throw new Error(`echo failed: ${JSON.stringify(r)}`);
    into?.push(took);
  }
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg()[0]!;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'panopticon-bench-mcp-'));
  const panopticon = await spawnServer({ PANOPTICON_DB: path.join(dataDir, 'panopticon.db'), PANOPTICON_LOG_LEVEL: 'warn' });
  try {
    const t = await createTenant(panopticon.url);
    const proxy = (flags: string[]) => [LOGI_BIN, '--url', panopticon.url, 'mcp', 'proxy', '--client-id', t.clientId, '--quiet', ...flags, '--', process.execPath, ECHO_SERVER];
    const clients: Record<Mode, Client> = {
      direct: await connect([ECHO_SERVER], {}),
      'proxy, guard off': await connect(proxy(['--no-guard']), { LOGI_PAK: t.pak }),
      'proxy, guard on': await connect(proxy([]), { LOGI_PAK: t.pak }),
    };
    const sdk = createPanopticon({ url: panopticon.url, pak: t.pak, clientId: t.clientId });
    const samples: Record<Mode | 'guard check alone', number[]> = { direct: [], 'proxy, guard off': [], 'proxy, guard on': [], 'guard check alone': [] };

    for (const client of Object.values(clients)) await timeCalls(client, WARMUP, null);
    for (let i = 0; i < WARMUP; i++) await sdk.check({ tool: 'echo', scope: 'mcp:tools' });
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of Object.keys(clients) as Mode[]) await timeCalls(clients[mode], CALLS_PER_ROUND, samples[mode]);
      for (let i = 0; i < CALLS_PER_ROUND; i++) {
        const started = performance.now();
        const d = await sdk.check({ tool: 'echo', scope: 'mcp:tools', arguments: { text: `call ${i}` } });
        samples['guard check alone'].push(performance.now() - started);
        if (d.decision !== 'allow') throw new Error(`check: ${JSON.stringify(d)}`);
      }
      process.stdout.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    for (const client of Object.values(clients)) await client.close();
    await sdk.shutdown();

    const stats = Object.fromEntries(Object.entries(samples).map(([mode, v]) => {
      const s = [...v].sort((a, b) => a - b);
      return [mode, { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99) }];
    })) as Record<keyof typeof samples, { n: number; p50: number; p90: number; p99: number }>;
    const relay = stats['proxy, guard off'].p50 - stats.direct.p50;
    const guarded = stats['proxy, guard on'].p50 - stats['proxy, guard off'].p50;

    const md: string[] = [];
    md.push('# MCP proxy benchmark', '');
    md.push(`Generated by \`npm run bench:mcp\` on ${new Date().toISOString()}${smoke ? ' (smoke run: short, not for citing)' : ''}. Do not edit by hand.`, '');
    md.push(`Machine: ${os.cpus().length} cores, Node ${process.version}; the MCP client (this benchmark), the proxy, the MCP server and Panopticon (SQLite) are four processes sharing them, ` +
      `with whatever else the machine runs (1-minute load average ${loadBefore.toFixed(1)} before the run, ${os.loadavg()[0]!.toFixed(1)} after): on a busy machine the tails (p90, p99) say more about the machine than about the proxy.`, '');
    md.push('The official MCP client calls the `echo` tool of a minimal stdio MCP server (the official SDK; it answers at once), one call at a time, ' +
      `in ${ROUNDS} rounds of ${CALLS_PER_ROUND} calls per mode taking turns (after ${WARMUP} warm-up calls each). The round trip is measured in the client, so it includes both pipes and both processes. ` +
      'Through the proxy every call is also traced (buffered, sent in batches in the background) and looked up in the pinned tools; with the guard on it is first checked with `POST /panopticon/guard/check`, whose durable record is most of its cost (see [benchmarks-guard.md](benchmarks-guard.md)).', '');
    md.push('| mode | calls | p50 | p90 | p99 |', '| --- | ---: | ---: | ---: | ---: |');
    for (const [mode, s] of Object.entries(stats)) md.push(`| ${mode} | ${s.n.toLocaleString('en-US')} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} |`);
    md.push('');
    md.push(`**The relay adds ${ms(relay)} p50** (proxy with the guard off minus direct); target: at most 1 ms. ` +
      `With the guard on, a call takes ${ms(guarded)} more at p50 than with it off, against ${ms(stats['guard check alone'].p50)} for a guard check alone from the same machine.`, '');
    fs.writeFileSync(out, md.join('\n'));
    process.stdout.write(md.join('\n') + '\n');
  } finally {
    panopticon.child.kill('SIGTERM');
    await panopticon.exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
