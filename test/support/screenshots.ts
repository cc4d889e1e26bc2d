/**
 * `npm run screenshots`: walks the console on a fresh SQLite server and writes the README's
 * screenshots to docs/screenshots (1366x900, and the timeline at 390x844).
 */
import path from 'node:path';
import { REPO_ROOT, startServer } from './harness.js';
import { walkConsole } from './console-walk.js';

const server = await startServer('sqlite');
try {
  const dir = path.join(REPO_ROOT, 'docs', 'screenshots');
  await walkConsole(server.url, { screenshotDir: dir });
  console.log(`screenshots written to ${dir}`);
} finally {
  await server.close();
}
