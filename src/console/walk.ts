/**
 * The Getting Started page, steps 1-3, done by a person in the console, in real headless Chromium:
 * sign up, create an app, open its Panopticon tab, flip Enable, issue the PAK and read it from the
 * shown-once dialog, send the page's trace over HTTP with that PAK, and watch it arrive in Live
 * Trace (no reload) and in the Activity Timeline; then Usage, a policy rule, the kill switch and the
 * audit log. Shared by the browser test and `npm run screenshots` (which writes docs/screenshots).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the console browser tests need Debian's chromium (apt-get install -y chromium; .ci/run does this)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
}

export interface WalkResult {
  clientId: string;
  pak: string;
  timings: { liveMs: number };
}

/** The seed's trace, verbatim but for this app's client_id and a fresh event_id per run. */
function seedTrace(clientId: string, overrides: Record<string, unknown> = {}) {
  return {
    event_id: crypto.randomUUID(),
    client_id: clientId,
    tool: 'hello',
    scope_used: 'agent:read',
    status: 'ok',
    started_at: '2026-05-09T10:11:12Z',
    duration_ms: 12,
    ...overrides,
  };
}

async function sendTrace(baseUrl: string, pak: string, body: unknown): Promise<number> {
  const res = await fetch(`${baseUrl}/panopticon/trace`, {
    method: 'POST',
    headers: { authorization: `Bearer ${pak}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

export async function walkConsole(baseUrl: string, options: { screenshotDir?: string } = {}): Promise<WalkResult> {
  const browser = await launchChromium();
  const shot = async (page: Page, name: string) => {
    if (options.screenshotDir === undefined) return;
    fs.mkdirSync(options.screenshotDir, { recursive: true });
    await page.screenshot({ path: path.join(options.screenshotDir, `${name}.png`) });
  };
  try {
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseUrl });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/401|Unauthorized/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
    });

    // Not signed in: the console sends us to sign-in, and from there to sign-up.
    await page.goto(`${baseUrl}/`);
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    await shot(page, 'sign-in');
    await page.getByRole('link', { name: 'Sign up' }).click();
    const email = `seed-${crypto.randomBytes(4).toString('hex')}@example.com`;
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('correct horse battery staple');
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByRole('heading', { name: 'Applications', exact: true }).waitFor();
    await page.getByText('No applications yet').waitFor();

    // Create the application; the console opens its Panopticon tab.
    await page.getByLabel('New application name').fill('my-agent');
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.waitForURL(/\/apps\/logi_[0-9a-f]{12}\/panopticon$/);
    const clientId = /\/apps\/(logi_[0-9a-f]{12})\//.exec(page.url())![1]!;

    // Step 1: Enable, then Issue PAK: shown once, with the warning and a copy button.
    const enable = page.getByRole('switch');
    assert.equal(await enable.isChecked(), false);
    await enable.check();
    await page.getByText('Panopticon enabled').waitFor();
    await page.getByRole('button', { name: 'Issue PAK' }).click();
    const dialog = page.getByRole('dialog', { name: 'Your new PAK' });
    await dialog.waitFor();
    await dialog.getByText('shown only once').waitFor();
    const pak = await dialog.getByTestId('new-pak').inputValue();
    assert.match(pak, /^pano_pak_[0-9A-Za-z]{38}$/);
    await dialog.getByRole('button', { name: 'Copy' }).click();
    await dialog.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), pak);
    await shot(page, 'panopticon-pak-shown-once');
    // Escape must not lose the key by accident: only the explicit button closes this dialog.
    await page.keyboard.press('Escape');
    assert.equal(await dialog.isVisible(), true);
    await dialog.getByRole('button', { name: 'I have stored it' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const keyRow = page.getByRole('row', { name: new RegExp(`${pak.slice(0, 15)}`) });
    await keyRow.getByText('active').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Issue PAK' }).count(), 0);

    // Step 3 (live half) first: Live Trace is open and connected before the trace is sent.
    await page.getByRole('link', { name: 'Live Trace' }).click();
    await page.getByTestId('live-state').getByText('Live').waitFor();
    await page.getByText('Waiting for traces').waitFor();

    // Step 2: the page's curl, with this PAK and client_id: 202, then 200 for the same event_id.
    const first = seedTrace(clientId);
    const sentAt = Date.now();
    assert.equal(await sendTrace(baseUrl, pak, first), 202);
    await page.getByRole('button', { name: `Details of hello at 2026-05-09T10:11:12.000Z` }).waitFor({ timeout: 5000 });
    const liveMs = Date.now() - sentAt;
    assert.equal(await sendTrace(baseUrl, pak, first), 200);

    // More traffic, for a timeline worth looking at (and to see Live keep up).
    const tools = ['search_docs', 'create_invoice', 'send_email', 'read_calendar'];
    const statuses = ['ok', 'ok', 'error', 'ok', 'denied', 'timeout'];
    const more = Array.from({ length: 17 }, (_, i) =>
      seedTrace(clientId, {
        tool: tools[i % tools.length],
        status: statuses[i % statuses.length],
        scope_used: ['docs:read', 'billing:write', 'mail:send', 'calendar:read'][i % 4],
        user_sub: ['alice', 'bob', null][i % 3],
        started_at: new Date(Date.parse('2026-05-09T10:12:00Z') + i * 7 * 3600_000).toISOString(),
        duration_ms: 20 + ((i * 37) % 400),
        error_message: statuses[i % statuses.length] === 'error' ? 'upstream returned 502' : null,
        attributes: i % 2 ? { model: 'claude-sonnet', mcp_server: 'billing' } : null,
      }),
    );
    for (const t of more) assert.equal(await sendTrace(baseUrl, pak, t), 202);
    await page.getByRole('table', { name: 'Live traces, newest first' }).getByRole('row').nth(18).waitFor({ timeout: 5000 });
    assert.equal(await page.getByRole('table', { name: 'Live traces, newest first' }).getByRole('row').count(), 19);
    await shot(page, 'live-trace');

    // Pause buffers, resume shows what arrived meanwhile.
    await page.getByRole('button', { name: 'Pause' }).click();
    assert.equal(await sendTrace(baseUrl, pak, seedTrace(clientId, { tool: 'while_paused', started_at: '2026-05-12T09:00:00Z' })), 202);
    await page.getByRole('button', { name: 'Resume (1 waiting)' }).waitFor({ timeout: 5000 });
    assert.equal(await page.getByRole('button', { name: /Details of while_paused/ }).count(), 0);
    await page.getByRole('button', { name: 'Resume (1 waiting)' }).click();
    await page.getByRole('button', { name: /Details of while_paused/ }).waitFor();

    // Step 3: the Activity Timeline, newest first, with the seed's trace and its detail drawer.
    await page.getByRole('link', { name: 'Activity Timeline' }).click();
    const timeline = page.getByRole('table', { name: 'Traces, newest first' });
    await timeline.getByRole('row').nth(19).waitFor();
    assert.equal(await timeline.getByRole('row').count(), 20);
    await timeline.getByRole('button', { name: 'Details of hello at 2026-05-09T10:11:12.000Z' }).click();
    const drawer = page.getByRole('dialog', { name: 'Trace' });
    await drawer.getByText(first.event_id).waitFor();
    await drawer.getByText('agent:read').waitFor();
    await shot(page, 'timeline-detail');
    await drawer.getByRole('button', { name: 'Close' }).click();
    await drawer.waitFor({ state: 'hidden' });
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'timeline');

    // Filters become query parameters of the timeline API.
    await page.getByLabel('Tool').fill('send_email');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/tool=send_email/);
    await page.getByRole('button', { name: 'Clear' }).waitFor();
    const filteredRows = page.getByRole('table', { name: 'Traces, newest first' }).getByRole('row');
    await filteredRows.nth(1).waitFor();
    assert.equal(await filteredRows.count(), 1 + more.filter((t) => t.tool === 'send_email').length);
    await page.getByRole('button', { name: 'Clear' }).click();

    // Usage: the seed's date range; the counters include the seed's trace.
    await page.getByRole('link', { name: 'Usage' }).click();
    await page.getByLabel('From (UTC date)').fill('2026-05-01');
    await page.getByLabel('Until (UTC date, inclusive)').fill('2026-05-31');
    await page.getByTestId('total-traces').getByText('19').waitFor();
    const errors = more.filter((t) => t.status === 'error' || t.status === 'timeout').length;
    assert.equal(await page.getByTestId('total-errors').textContent(), String(errors));
    await page.getByRole('figure', { name: 'Daily counters chart' }).locator('.recharts-bar-rectangle').first().waitFor();
    await shot(page, 'usage');
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export CSV' }).click();
    const csvPath = await (await download).path();
    const csv = fs.readFileSync(csvPath, 'utf8');
    assert.match(csv, /^date,traces,errors,hitl_requests,kill_switch\n2026-05-09,/);
    assert.match(csv, /\ntotal,19,/);

    // Policies: add a rule in the editor and see it listed; kill switch only after confirming.
    await page.getByRole('link', { name: 'Policies' }).click();
    await page.getByRole('button', { name: 'Add rule' }).click();
    const editor = page.getByRole('dialog', { name: 'Add a rule' });
    await editor.getByLabel('Name').fill('internal mail only');
    await editor.getByLabel('Effect').selectOption('deny');
    await editor.getByLabel(/^Tools/).fill('send_email');
    await editor.getByLabel(/Argument conditions/).fill('[{"path": "to", "op": "not_suffix", "value": "@ourco.com"}]');
    await editor.getByLabel('Reason shown to the agent').fill('external recipients are not allowed');
    await editor.getByRole('button', { name: 'Save rule' }).click();
    await editor.waitFor({ state: 'hidden' });
    await page.getByRole('listitem').filter({ hasText: 'internal mail only' }).getByText('tools send_email; 1 argument condition(s)').waitFor();
    await page.getByText('version 1').waitFor();
    await page.getByRole('button', { name: 'Turn kill switch on…' }).click();
    const confirm = page.getByRole('dialog', { name: 'Turn the kill switch on?' });
    assert.equal(await confirm.getByRole('button', { name: 'Turn kill switch on' }).isDisabled(), true);
    await confirm.getByLabel(/^Reason/).fill('incident 42');
    await shot(page, 'policies-kill-confirm');
    await confirm.getByRole('button', { name: 'Turn kill switch on' }).click();
    await page.getByText('for the whole application').waitFor();
    await page.getByRole('button', { name: 'Simulate' }).click();
    await page.getByText(/samples;/).waitFor();
    await shot(page, 'policies');
    const killed = await fetch(`${baseUrl}/panopticon/guard/check`, {
      method: 'POST',
      headers: { authorization: `Bearer ${pak}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: clientId, tool: 'search_docs', scope: 'docs:read' }),
    });
    assert.equal(((await killed.json()) as { reason: string }).reason, 'kill_switch');

    // Audit: the key issue, the rule and the kill are recorded, and the chain verifies.
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('cell', { name: 'kill.on' }).waitFor();
    await page.getByRole('cell', { name: 'pak.issue' }).waitFor();
    await page.getByRole('button', { name: 'Verify the hash chain' }).click();
    await page.getByText(/Intact: \d+ entries/).waitFor();
    await shot(page, 'audit');

    // Back to the list (the header's link): the app shows as enabled.
    await page.getByRole('banner').getByRole('link', { name: 'Panopticon' }).click();
    await page.getByRole('row', { name: /my-agent/ }).getByText('Enabled').waitFor();
    await shot(page, 'apps');

    // A phone: the timeline still reads (no horizontal page scroll).
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'en-GB', timezoneId: 'UTC', storageState: await context.storageState() });
    const phonePage = await phone.newPage();
    await phonePage.goto(`${baseUrl}/apps/${clientId}/timeline`);
    await phonePage.getByRole('table', { name: 'Traces, newest first' }).waitFor();
    const overflow = await phonePage.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the phone layout scrolls sideways by ${overflow}px`);
    await shot(phonePage, 'timeline-phone');
    await phone.close();

    // Sign out ends the session: the console is back at sign-in.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    const me = await page.evaluate(async () => (await fetch('/api/me')).status);
    assert.equal(me, 401);

    assert.deepEqual(problems, []);
    await context.close();
    return { clientId, pak, timings: { liveMs } };
  } finally {
    await browser.close();
  }
}
