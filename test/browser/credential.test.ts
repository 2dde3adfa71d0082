/**
 * The dashboard's credential in a real Chromium: after the dashboard, a
 * console and the tunnels' live updates have been used in one browser
 * context, another web server on another port of 127.0.0.1 (another local
 * user's, say) is visited from that same context. Whatever Cookie header
 * Chromium sends it (cookies ignore ports), replayed against the dashboard's
 * API, event stream and console WebSocket, opens nothing (docs/ui.md,
 * "Access token").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { demoInventory } from '../../src/demo/demo-inventory.js';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';
import { HostSessions, startUiServer, type UiServer } from '../../src/server/index.js';
import { canvasStats, chromiumSkipReason, launchChromium } from './chromium.js';

/** The console query of win2016: the page names a VM by UUID, its name is the title. */
const WIN2016 = `uuid=${demoInventory().domains.find((d) => d.name === 'win2016')!.uuid}&name=win2016`;

const skip = chromiumSkipReason();

function get(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      resolve(res.statusCode!);
      res.destroy();
    });
    req.on('error', reject);
  });
}

function post(port: number, path: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json', ...headers } }, (res) => {
      resolve(res.statusCode!);
      res.resume();
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The HTTP status of a refused upgrade, or 101 when the WebSocket opened. */
function upgrade(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers, perMessageDeflate: false });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode!);
      res.resume();
    });
    ws.on('error', () => {});
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
  });
}

describe('the dashboard credential in chromium: nothing another port of 127.0.0.1 receives opens anything', { skip }, () => {
  let site: DemoSite;
  let sessions: HostSessions;
  let ui: UiServer;
  let other: http.Server;
  let otherPort: number;
  /** The Cookie header of every request the other server got (undefined: none sent). */
  const cookiesSeen: (string | undefined)[] = [];
  let browser: Browser;
  let context: BrowserContext;
  let dashboard: Page;
  const problems: string[] = [];
  /** Every command line the demo hypervisor ran. */
  const commands: string[] = [];

  before(async () => {
    site = await startDemoSite();
    const run = site.libvirt.run.bind(site.libvirt);
    site.libvirt.run = (command, stdin) => {
      commands.push(command);
      return run(command, stdin);
    };
    sessions = new HostSessions([{ name: site.hostName, dest: 'demo', uri: site.libvirtUri, planHops: async () => site.hops }]);
    ui = await startUiServer({ sessions, isDemo: true });
    other = http.createServer((req, res) => {
      cookiesSeen.push(req.headers.cookie);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>someone else</title><p>another local server</p>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    otherPort = (other.address() as AddressInfo).port;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.on('page', (p) => {
      p.on('console', (m) => {
        if (/Content Security Policy|Refused to/.test(m.text())) problems.push(m.text());
      });
      p.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
    });
  }, { timeout: 120_000 });

  after(async () => {
    await browser?.close();
    await new Promise((r) => other?.close(r));
    await ui?.close();
    await sessions?.close();
    await site?.stop();
  });

  it('the dashboard lists the VMs, its console draws, and the tunnels panel updates live', { timeout: 90_000 }, async () => {
    dashboard = await context.newPage();
    await dashboard.goto(ui.url('/'));
    const row = dashboard.locator('tr[data-vm="win2016"]');
    await row.waitFor({ timeout: 30_000 });
    assert.ok(!dashboard.url().includes('token='), 'the token is dropped from the address bar');
    await dashboard.locator('body[data-live="live"]').waitFor({ timeout: 15_000 });

    const [consolePage] = await Promise.all([context.waitForEvent('page'), row.getByRole('link', { name: 'Console' }).click()]);
    await consolePage.locator('body[data-state="connected"]').waitFor({ timeout: 30_000 });
    assert.ok(!consolePage.url().includes('token='), "the console tab drops the token from its address bar too");
    for (let i = 0; ; i++) {
      const s = await canvasStats(consolePage);
      if (s.width > 0 && s.light > 2000 && s.dark > s.light * 5) break;
      assert.ok(i < 150, `the console drew the demo screen: ${JSON.stringify(s)}`);
      await consolePage.waitForTimeout(100);
    }

    // Pushed over the event stream (the dashboard never polls): the console's tunnel, then its byte counter moving.
    const tunnel = dashboard.locator('.tunnel', { hasText: `${site.hostName}/win2016` });
    await tunnel.filter({ hasText: '1 active' }).waitFor({ timeout: 15_000 });
    const firstIn = await tunnel.locator('.tunnel-stats').innerText();
    await dashboard.waitForFunction(
      (before) => [...document.querySelectorAll('.tunnel .tunnel-stats')].some((e) => e.textContent !== before),
      firstIn,
      { timeout: 15_000 },
    );
    await consolePage.close();
    assert.deepEqual(problems, []);
  });

  it('replays what another port of 127.0.0.1 receives from this browser: API, events and console all 401', { timeout: 60_000 }, async () => {
    assert.ok(dashboard, 'the first test used the dashboard');
    const visitor = await context.newPage();
    await visitor.goto(`http://127.0.0.1:${otherPort}/`);
    await visitor.getByText('another local server').waitFor();
    await visitor.close();
    assert.ok(cookiesSeen.length > 0, 'the other server was visited');
    const cookie = cookiesSeen.find((c) => c !== undefined) ?? '';
    const headers: Record<string, string> = cookie === '' ? {} : { cookie };
    const origin = `http://127.0.0.1:${ui.port}`;

    assert.equal(await get(ui.port, '/api/hosts', headers), 401);
    assert.equal(await get(ui.port, `/api/hosts/${site.hostName}/vms`, headers), 401);
    assert.equal(await get(ui.port, '/api/events', headers), 401);
    assert.equal(await post(ui.port, '/api/tickets', { ...headers, origin }, JSON.stringify({ purpose: 'events' })), 401);
    assert.equal(await post(ui.port, `/api/hosts/${site.hostName}/vms/win2016/rdp`, { ...headers, origin }, '{}'), 401);
    assert.equal(await upgrade(ui.port, `/ws/console?host=${site.hostName}&${WIN2016}`, { ...headers, origin }), 401);
    // The dashboard kept working meanwhile, with its own credential.
    assert.equal(await dashboard.evaluate(() => document.body.dataset.live), 'live');
  });

  it("a console opened through vmdesk's redirect file connects, and again after a reload", { timeout: 60_000 }, async () => {
    // What `vmdesk vnc --browser` hands the browser (src/cli/browser.ts): a file:// page, so the console's request is cross-site.
    const dir = mkdtempSync(join(tmpdir(), 'vmdesk-open-'));
    const file = join(dir, 'open.html');
    writeFileSync(file, `<!doctype html><meta http-equiv="refresh" content="0;url=${ui.url(`/console?host=${site.hostName}&${WIN2016}`)}">`);
    const tab = await context.newPage();
    await tab.goto(pathToFileURL(file).href);
    await tab.waitForURL((u) => u.pathname === '/console' && !u.hash.includes('token='));
    await tab.locator('body[data-state="connected"]').waitFor({ timeout: 30_000 });
    await tab.reload();
    await tab.locator('body[data-state="connected"]').waitFor({ timeout: 30_000 });
    await tab.close();
  });

  it('a console page another port navigates this tab to does not use the token the tab holds', { timeout: 60_000 }, async () => {
    const tab = await context.newPage();
    await tab.goto(ui.url('/'));
    await tab.locator('tr[data-vm="win2016"]').waitFor({ timeout: 30_000 });
    await tab.goto(`http://127.0.0.1:${otherPort}/`);
    commands.length = 0;
    const target = `http://127.0.0.1:${ui.port}/console?host=${site.hostName}&${WIN2016}`;
    await tab.evaluate((u) => {
      location.href = u;
    }, target);
    await tab.waitForURL(target);
    await tab.locator('body[data-state="disconnected"]').waitFor({ timeout: 15_000 });
    assert.match(await tab.locator('#overlay').innerText(), /access link/);
    assert.deepEqual(commands, [], 'nothing ran on the hypervisor');
    // Opened from the dashboard (the same origin), the same tab still works.
    await tab.goto(ui.url('/'));
    await tab.locator('tr[data-vm="win2016"]').waitFor({ timeout: 30_000 });
    await tab.close();
  });
});
