/**
 * The console in real headless Chromium (Debian's /usr/bin/chromium through playwright-core),
 * against the real server: the Getting Started page's steps 1-3 as a person does them (see
 * walk.ts), then the approvals inbox unblocking a long-polling agent and HMAC signing. Screenshots
 * go to a scratch directory here; `npm run screenshots` writes docs/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENGINES, startServer, tempDir, type RunningServer } from '../support/harness.js';
import { walkConsole } from '../support/console-walk.js';

for (const engine of ENGINES) {
  describe(`console in Chromium [${engine}]`, () => {
    let server: RunningServer;
    let shots: string;
    before(async () => {
      server = await startServer(engine);
      shots = tempDir('shots');
    });
    after(async () => {
      await server?.close();
      fs.rmSync(shots, { recursive: true, force: true });
    });

    it('sign up, create app, enable, issue PAK, send the trace: it shows in Live Trace without reload and in the timeline; usage, policies; an approval decided in the inbox unblocks a long-polling agent; HMAC signing; a quarantined MCP tool approved; kill switch, audit', async () => {
      const result = await walkConsole(server.url, { screenshotDir: shots });
      // Generous for a loaded 2-core machine; the server side is held to 1 s in test/http/live.test.ts.
      assert.ok(result.timings.liveMs < 3000, `Live Trace showed the trace after ${result.timings.liveMs} ms`);
      const taken = fs.readdirSync(shots).sort();
      assert.deepEqual(taken, ['apps', 'approvals', 'audit', 'hmac-secret-shown-once', 'live-trace', 'panopticon-pak-shown-once', 'policies', 'policies-kill-confirm', 'sign-in', 'timeline', 'timeline-detail', 'timeline-phone', 'tools-quarantine', 'usage'].map((n) => `${n}.png`).sort());
      for (const f of taken) assert.ok(fs.statSync(path.join(shots, f)).size > 5000, `${f} looks empty`);
    });
  });
}
