/**
 * Runs this checkout's `logi` (bin/logi.js) as a user would: a child process of the Node.js running
 * the tests, with only the environment given (plus PATH), so no credential of the machine leaks in.
 */
import { execFile } from 'node:child_process';
import { LOGI_BIN } from './harness.js';

export interface CliRun {
  /** The exit code; -1 when the process was killed (the timeout) or did not start. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Any program, the same way (the walk-through runs curl too). */
export function run(file: string, args: readonly string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(file, [...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

export function logi(args: readonly string[], env: Record<string, string>, timeoutMs?: number): Promise<CliRun> {
  return run(process.execPath, [LOGI_BIN, ...args], env, timeoutMs);
}
