/**
 * The CLI's configuration from the environment. Kept apart from src/config.ts so that `logi` does
 * not load a schema library on every start: each variable is an optional string, and an empty one
 * counts as unset (as for the server's variables).
 */
import os from 'node:os';
import path from 'node:path';

const CLI_VARIABLES = ['LOGI_URL', 'LOGI_TOKEN', 'LOGI_PAK', 'LOGI_PAK_SECRET', 'XDG_CONFIG_HOME'] as const;
type CliVariable = (typeof CLI_VARIABLES)[number];

function readCliEnv(env: NodeJS.ProcessEnv): Partial<Record<CliVariable, string>> {
  const picked: Partial<Record<CliVariable, string>> = {};
  for (const name of CLI_VARIABLES) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') picked[name] = raw;
  }
  return picked;
}

/**
 * The CLI's secrets in the environment. `logi mcp proxy` launches a server someone else wrote: it
 * gets the proxy's environment without these (a server could show its environment to the model).
 */
export const CLI_SECRET_VARIABLES = ['LOGI_PAK', 'LOGI_PAK_SECRET', 'LOGI_TOKEN'] as const;

export function withoutCliSecrets(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const name of CLI_SECRET_VARIABLES) delete copy[name];
  return copy;
}

export interface CliConfig {
  url: string | undefined;
  token: string | undefined;
  credentialsFile: string;
  pak: string | undefined;
  pakSecret: string | undefined;
}

export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const e = readCliEnv(env);
  const configDir = e.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config');
  return {
    url: e.LOGI_URL,
    token: e.LOGI_TOKEN,
    credentialsFile: path.join(configDir, 'logi', 'credentials.json'),
    pak: e.LOGI_PAK,
    pakSecret: e.LOGI_PAK_SECRET,
  };
}
