/**
 * `npm start` as a newcomer runs it: the embedded demo site behind the real
 * dashboard, looked at in Debian's chromium. The console must draw the demo
 * VM's screen (light text on a dark screen) and echo typed keys.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { sceneLayout } from '../../src/demo/rfb-server.js';
import { canvasStats, chromiumSkipReason, launchChromium, saveShot } from './chromium.js';

const CHECKOUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const skip = chromiumSkipReason();

/** Starts `npm start -- --no-open` and resolves the URL it prints first. */
function startDemo(): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn('npm', ['start', '--silent', '--', '--no-open'], { cwd: CHECKOUT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, DISPLAY: '', BROWSER: '' } });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start printed no URL in 120 s\n${out}\n${err}`)), 120_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, output: () => out + err });
      }
    });
    child.once('exit', (code) => reject(new Error(`npm start exited ${code}\n${out}\n${err}`)));
  });
}

async function waitForScreen(page: Page, timeoutMs: number): Promise<Awaited<ReturnType<typeof canvasStats>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await canvasStats(page);
    if (s.width > 0 && s.light > 2000 && s.dark > s.light * 5) return s;
    if (Date.now() > deadline) throw new Error(`the console never showed the demo screen: ${JSON.stringify(s)}`);
    await page.waitForTimeout(100);
  }
}

describe('npm start (embedded demo) in chromium', { skip }, () => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  let browser: Browser;

  before(async () => {
    demo = await startDemo();
    browser = await launchChromium();
  }, { timeout: 180_000 });
  after(async () => {
    await browser?.close();
    if (demo?.child.pid) process.kill(-demo.child.pid, 'SIGINT');
  });

  it('serves a dashboard that lists the demo VMs, labelled as a demo', { timeout: 60_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/.test(m.text())) violations.push(m.text());
    });
    await page.goto(demo.url);
    await page.getByText('win2016', { exact: true }).first().waitFor({ timeout: 30_000 });
    assert.match(await page.locator('body').innerText(), /demo/i);
    assert.ok(!page.url().includes('token='), 'the token is dropped from the address bar');
    await saveShot(page, 'demo-dashboard');
    assert.deepEqual(violations, []);
    await page.close();
  });

  it("opens win2016's console, draws its screen and echoes typed keys", { timeout: 60_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(demo.url);
    await page.getByText('win2016', { exact: true }).first().waitFor({ timeout: 30_000 });
    const base = new URL(demo.url);
    await page.goto(`${base.origin}/console?host=demo-kvm&uuid=cf033973-fff1-4b6f-afb3-e3276b4205f1&name=win2016`);
    await page.locator('body[data-state="connected"]').waitFor({ timeout: 30_000 });
    const screen = await waitForScreen(page, 15_000);
    // The demo VM echoes typed keys on its "typed:" line: only that line is compared (the clock and a square move elsewhere).
    const line = sceneLayout(screen.width, screen.height).typed;
    const before = await canvasStats(page, line);
    await page.locator('#screen canvas').click();
    await page.keyboard.type('hello vmdesk');
    const deadline = Date.now() + 10_000;
    let now = before;
    while (now.light < before.light + 200 && Date.now() < deadline) {
      await page.waitForTimeout(100);
      now = await canvasStats(page, line);
    }
    assert.ok(now.light >= before.light + 200, `typed text appeared on the typed line (light pixels ${before.light} -> ${now.light})`);
    await page.waitForTimeout(500);
    await saveShot(page, 'demo-console');
    await page.close();
  });

  it("opens the RDP page from the dashboard, which says the demo simulates no RDP server, and fails to connect with a clear error", { timeout: 60_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/.test(m.text())) violations.push(m.text());
    });
    await page.goto(demo.url);
    const link = page.getByRole('link', { name: 'RDP in browser' }).first();
    await link.waitFor({ timeout: 30_000 });
    const [rdp] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
    await rdp.waitForSelector('#demo-note:not([hidden])', { timeout: 30_000 });
    assert.match(await rdp.innerText('#demo-note'), /simulates no RDP server/);
    await rdp.fill('#rdp-user', 'someone');
    await rdp.fill('#rdp-password', 'anything');
    await rdp.click('#btn-connect');
    await rdp.waitForFunction(() => document.body.dataset.state === 'failed', null, { timeout: 30_000 });
    assert.match((await rdp.getAttribute('#error', 'data-code')) ?? '', /^RDP_/);
    assert.equal(await rdp.isVisible('#rdp-canvas'), false);
    assert.deepEqual(violations, [], 'the wasm compiles under the RDP page\'s CSP');
    await rdp.close();
    await page.close();
  });
});
