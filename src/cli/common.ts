/**
 * What every `logi` command shares: the API client from flags, env and saved credentials; --json
 * output; error reporting and exit codes (0 ok, 1 the server refused or failed, 2 bad usage).
 * Command groups live in their own files and register themselves on the program.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { loadCliConfig, type CliConfig } from '../cli-config.js';
import { ApiCallError, ApiClient } from './client.js';

interface GlobalOptions {
  json?: boolean;
  url?: string;
}

export type Json = Record<string, unknown>;

export class UsageError extends Error {}

export const cliConfig: CliConfig = loadCliConfig();

export function client(cmd: Command): ApiClient {
  return ApiClient.fromConfig(cliConfig, (cmd.optsWithGlobals() as GlobalOptions).url);
}

export function jsonMode(cmd: Command): boolean {
  return (cmd.optsWithGlobals() as GlobalOptions).json === true;
}

export function out(text: string): void {
  process.stdout.write(text);
}

/** Wraps a command body: --json printing, error reporting and exit codes in one place. */
export function run(body: (cmd: Command, ...args: string[]) => Promise<{ json: unknown; human: string }>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const positional = args.slice(0, -2).filter((a): a is string => typeof a === 'string');
    try {
      const result = await body(cmd, ...positional);
      out(jsonMode(cmd) ? JSON.stringify(result.json, null, 2) + '\n' : result.human);
    } catch (err) {
      const json = jsonMode(cmd);
      if (err instanceof ApiCallError) {
        process.stderr.write(json ? JSON.stringify(err.body ?? { error: { message: err.message } }) + '\n' : `logi: ${err.message}\n`);
        process.exitCode = 1;
      } else if (err instanceof UsageError) {
        process.stderr.write(json ? JSON.stringify({ error: { code: 'usage', message: err.message } }) + '\n' : `logi: ${err.message}\n`);
        process.exitCode = 2;
      } else {
        throw err;
      }
    }
  };
}

export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'print machine-readable JSON');
}

export const positiveInt = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(value);
};

export const isoDate = (value: string): string => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) throw new InvalidArgumentError('must be a date YYYY-MM-DD');
  return value;
};

export function requireToken(api: ApiClient): void {
  if (!api.hasToken) throw new UsageError('not signed in: run `logi login --email E --password P` or set LOGI_TOKEN');
}


/** `client(cmd)` with a token required: every command but signup/login needs one. */
export function authedClient(cmd: Command): ApiClient {
  const api = client(cmd);
  requireToken(api);
  return api;
}

export const enc = encodeURIComponent;
