/**
 * `logi mcp proxy`: governs an MCP server nobody changed. Over stdio (`-- <command> [args...]`) the
 * MCP client launches the proxy instead of the server; over Streamable HTTP (`--upstream URL`) the
 * client connects to the proxy's `--listen` address instead of the server. See docs/mcp-proxy.md.
 */
import crypto from 'node:crypto';
import type { PanopticonError } from '@panopticon/sdk';
import { InvalidArgumentError, type Command } from 'commander';
import { parseUserSubSource, startHttpProxy, type UserSubSource } from '../mcp-proxy/http.js';
import { cliConfig, UsageError } from './common.js';
import { parseDuration } from './format.js';

const DEFAULT_PANOPTICON_URL = 'http://127.0.0.1:8080';

const duration = (flag: string) => (value: string): number => {
  const ms = parseDuration(value);
  if (ms === null || ms < 1 || ms > 2 ** 31 - 1) throw new InvalidArgumentError(`${flag}: "${value}" is not a duration like 500ms, 30s, 5m or 1h`);
  return ms;
};

interface ProxyFlags {
  clientId: string;
  pak?: string;
  pakSecret?: string;
  url?: string;
  scope: string;
  userSub?: string;
  sessionId?: string;
  failOpen?: boolean;
  guard: boolean;
  approvalTimeout?: number;
  callTimeout?: number;
  spool?: string;
  quiet?: boolean;
  upstream?: URL;
  listen: { host: string; port: number };
  userSubFrom?: UserSubSource;
}

const upstreamUrl = (value: string): URL => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`--upstream: "${value}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('--upstream: must be an http:// or https:// URL');
  return url;
};

const listenAddress = (value: string): { host: string; port: number } => {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) throw new InvalidArgumentError(`--listen: "${value}" is not HOST:PORT, e.g. 127.0.0.1:8808`);
  return { host: m[1] ?? m[2]!, port };
};

const userSubSource = (value: string): UserSubSource => {
  const source = parseUserSubSource(value);
  if (source === null) throw new InvalidArgumentError(`--user-sub-from: "${value}" is not jwt:<claim>, header:<name> or token-hash`);
  return source;
};

/** One line on stderr per event; stdout belongs to the protocol. */
function logger(quiet: boolean): (message: string) => void {
  return quiet ? () => {} : (message) => process.stderr.write(`[logi mcp proxy] ${message}\n`);
}

/** Delivery problems of the SDK, at most one line a minute unless the kind of problem changes. */
function deliveryLog(log: (m: string) => void): (err: PanopticonError) => void {
  let last = '';
  let at = 0;
  return (err) => {
    const now = Date.now();
    if (err.code === last && now - at < 60_000) return;
    last = err.code;
    at = now;
    log(`trace delivery: ${err.message} (retried with backoff; buffered traces are resent)`);
  };
}

export function registerMcpCommands(program: Command): void {
  const mcp = program.command('mcp').description('govern MCP servers without changing them');

  mcp.command('proxy')
    .description(
      'relay an MCP server with the AI Guard on every tools/call, approvals, traces, and tool pinning on tools/list.\n' +
      'stdio: logi mcp proxy --client-id … -- <command> [args...]: the MCP client launches this instead of the server; stdout carries the protocol, logs go to stderr.\n' +
      'Streamable HTTP: logi mcp proxy --client-id … --upstream https://host/mcp --listen 127.0.0.1:8808: the client connects to http://127.0.0.1:8808/mcp (the upstream\'s path) instead; its Authorization goes to the upstream unchanged.\n' +
      'Panopticon is at the global --url (logi --url URL mcp proxy …), else LOGI_URL, the saved login\'s URL, or http://127.0.0.1:8080. See docs/mcp-proxy.md.',
    )
    .argument('[command...]', 'the MCP server to launch, after --, with its arguments')
    .requiredOption('--client-id <client_id>', 'the application (logi_…) whose policies, approvals and pinned tools apply')
    .option('--pak <pak>', 'the application\'s PAK (default: LOGI_PAK; prefer the variable, which ps does not show)')
    .option('--pak-secret <secret>', 'its pak_secret when the application enforces HMAC signing (default: LOGI_PAK_SECRET)')
    .option('--scope <scope>', 'scope every call is checked and traced with', 'mcp:tools')
    .option('--user-sub <user>', 'user every call is checked and traced for (policies match it)')
    .option('--session-id <id>', 'session of the calls (default: a new UUID per proxy run; approvals remembered for a session use it)')
    .option('--fail-open', 'when Panopticon cannot be reached, let calls through and show unverified tools (default: refuse them, fail closed)')
    .option('--no-guard', 'do not ask the guard before calls: pin tools and trace calls only')
    .option('--approval-timeout <duration>', 'longest wait for a human approval, e.g. 5m (default: until the request expires)', duration('--approval-timeout'))
    .option('--call-timeout <duration>', 'a call the server has not answered after this long gets a tool error and is cancelled (default: no limit)', duration('--call-timeout'))
    .option('--spool <file>', 'keep traces not yet delivered in this file across restarts')
    .option('--quiet', 'no log lines on stderr')
    .option('--upstream <url>', 'Streamable HTTP mode: the remote MCP server\'s endpoint, e.g. https://mcp.example.com/mcp', upstreamUrl)
    .option('--listen <host:port>', 'Streamable HTTP mode: where the proxy listens', listenAddress, { host: '127.0.0.1', port: 8808 })
    .option('--user-sub-from <source>', 'Streamable HTTP mode: each call\'s user from the request: jwt:<claim> (read from the bearer token, not verified: the upstream verifies it), header:<name>, or token-hash', userSubSource)
    .action(async (command: string[], _opts: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<ProxyFlags>();
      try {
        if (o.upstream === undefined && command.length === 0) {
          throw new UsageError('name the MCP server to launch after --, e.g. logi mcp proxy --client-id logi_… -- npx -y @modelcontextprotocol/server-filesystem /data; or --upstream URL for a remote one');
        }
        if (o.upstream !== undefined && command.length > 0) throw new UsageError('--upstream relays a remote server: give no command after --');
        if (o.upstream === undefined && o.userSubFrom !== undefined) throw new UsageError('--user-sub-from needs --upstream (a stdio client sends no credentials)');
        if (o.upstream !== undefined && o.callTimeout !== undefined) throw new UsageError('--call-timeout applies to stdio only; an HTTP client times its own requests out');
        if (o.userSub !== undefined && o.userSubFrom !== undefined) throw new UsageError('--user-sub and --user-sub-from: choose one');
        const pak = o.pak ?? cliConfig.pak;
        if (pak === undefined) throw new UsageError('--pak or LOGI_PAK is required');
        const log = logger(o.quiet === true);
        const url = o.url ?? cliConfig.url ?? DEFAULT_PANOPTICON_URL;
        // Loaded here, not at the top: every other logi command would pay for the SDK and the
        // governor at start-up (see test/cli/startup.test.ts).
        const [{ createPanopticon }, { Governor }, { startStdioProxy }] = await Promise.all([
          import('@panopticon/sdk'), import('../mcp-proxy/governor.js'), import('../mcp-proxy/stdio.js'),
        ]);
        const panopticon = createPanopticon({
          url, pak, clientId: o.clientId, pakSecret: o.pakSecret ?? cliConfig.pakSecret,
          failMode: o.failOpen === true ? 'open' : 'closed', spoolPath: o.spool, onError: deliveryLog(log),
        });
        const governor = new Governor({
          panopticon, guard: o.guard, failOpen: o.failOpen === true, approvalTimeoutMs: o.approvalTimeout ?? null, transport: o.upstream === undefined ? 'stdio' : 'http', log,
        });
        const flush = async () => {
          const { pending } = await panopticon.shutdown({ timeoutMs: 3000 });
          if (pending > 0) log(`${pending} trace(s) not delivered${o.spool === undefined ? ' and lost (use --spool to keep them)' : `, kept in ${o.spool}`}`);
        };

        if (o.upstream !== undefined) {
          const proxy = await startHttpProxy({
            upstream: o.upstream, host: o.listen.host, port: o.listen.port, governor, scope: o.scope,
            userSub: o.userSub ?? null, userSubFrom: o.userSubFrom ?? null, log,
          }).catch((err: NodeJS.ErrnoException) => {
            throw new UsageError(`--listen ${o.listen.host}:${o.listen.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`);
          });
          // stdout is free in HTTP mode: the one line a launcher waits for.
          process.stdout.write(`MCP proxy listening on ${proxy.endpoint} for ${o.upstream.href}\n`);
          let stopping = false;
          for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
            process.on(sig, () => {
              if (stopping) process.exit(0);
              stopping = true;
              void proxy.close().then(flush).then(() => process.exit(0));
            });
          }
          return;
        }

        const proxy = startStdioProxy({
          command: command[0]!, args: command.slice(1), governor, log, callTimeoutMs: o.callTimeout ?? null,
          context: { scope: o.scope, userSub: o.userSub ?? null, sessionId: o.sessionId ?? crypto.randomUUID() },
        });
        // A signal goes to the server; once the server is gone, a signal cuts short the final trace delivery.
        let ended: number | null = null;
        for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
          process.on(sig, () => (ended === null ? proxy.signal(sig) : process.exit(ended)));
        }
        const code = await proxy.exited;
        ended = code;
        await flush();
        process.exit(code);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`logi: ${err.message}\n`);
        process.exit(2);
      }
    });
}
