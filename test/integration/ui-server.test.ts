/**
 * The UI server with real HTTP and WebSocket requests: the token, Host and
 * Origin checks refuse what they must (docs/ui.md), the API answers through
 * a real two-hop SSH chain to the embedded demo site, and a console
 * WebSocket carries the demo VM's RFB greeting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocket } from 'ws';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';
import { HostSessions, startUiServer, type UiServer } from '../../src/server/index.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host: `127.0.0.1:${port}`, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Opens a WebSocket; resolves with the first message, the close code/reason, or the HTTP status of a refused upgrade. */
function wsTry(port: number, path: string, headers: Record<string, string>): Promise<{ status?: number; first?: Buffer; close?: { code: number; reason: string } }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers, perMessageDeflate: false });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode! });
      res.resume();
    });
    ws.on('error', () => {});
    ws.on('message', (m: Buffer) => {
      resolve({ first: m });
      ws.close();
    });
    ws.on('close', (code, reason) => resolve({ close: { code, reason: reason.toString() } }));
  });
}

/** The demo VMs' UUIDs: the API and the console WebSocket name a VM by host and UUID. */
const UUID = {
  win2016: 'cf033973-fff1-4b6f-afb3-e3276b4205f1',
  'ubuntu-desktop': '97200831-9c83-4f63-a6a8-529cbc85d4d3',
  'legacy-exposed': '6ede338f-c252-440e-be84-ab58e1595951',
  gone: '00000000-0000-4000-8000-000000000000',
} as const;

describe('UI server', () => {
  let site: DemoSite;
  let sessions: HostSessions;
  let ui: UiServer;
  let origin: string;
  let bearer: Record<string, string>;

  before(async () => {
    site = await startDemoSite();
    sessions = new HostSessions([{ name: site.hostName, dest: 'demo', uri: site.libvirtUri, planHops: async () => site.hops }]);
    ui = await startUiServer({ sessions, isDemo: true });
    origin = `http://127.0.0.1:${ui.port}`;
    bearer = { authorization: `Bearer ${ui.token}` };
  });
  after(async () => {
    await ui.close();
    await sessions.close();
    await site.stop();
  });

  it('prints a URL that carries the token only in the fragment', () => {
    const u = new URL(ui.url('/console?host=a&vm=b'));
    assert.equal(u.hostname, '127.0.0.1');
    assert.equal(u.hash, `#token=${ui.token}`);
    assert.ok(!u.search.includes(ui.token));
    assert.ok(ui.token.length >= 43, 'a 256-bit token');
  });

  it('refuses pages and API calls without the token, with a wrong token, and answers with it', async () => {
    const page = await request(ui.port, '/');
    assert.equal(page.status, 403);
    assert.match(page.body, /login\.js/, 'the login page, which reads the token from the fragment');
    assert.equal((await request(ui.port, '/console?host=x&vm=y')).status, 403);
    const none = await request(ui.port, '/api/hosts');
    assert.equal(none.status, 403);
    assert.equal((JSON.parse(none.body) as { error: { code: string } }).error.code, 'UI_FORBIDDEN');
    assert.equal((await request(ui.port, '/api/hosts', { headers: { authorization: 'Bearer nope' } })).status, 403);
    assert.equal((await request(ui.port, '/api/hosts', { headers: { cookie: `vmdesk-${ui.port}=${ui.token.slice(0, -1)}x` } })).status, 403);
    assert.equal((await request(ui.port, '/api/hosts', { headers: { cookie: `vmdesk-${ui.port + 1}=${ui.token}` } })).status, 403, "another server's cookie");
    const ok = await request(ui.port, '/api/hosts', { headers: bearer });
    assert.equal(ok.status, 200);
    const body = JSON.parse(ok.body) as { demo: boolean; hosts: { name: string }[] };
    assert.equal(body.demo, true);
    assert.deepEqual(
      body.hosts.map((h) => h.name),
      [site.hostName],
    );
  });

  it('sets an HttpOnly SameSite=Strict session cookie from the token, and only from the right one', async () => {
    const wrong = await request(ui.port, '/api/session', { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token: 'x' }) });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.headers['set-cookie'], undefined);
    const foreign = await request(ui.port, '/api/session', { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'application/json' }, body: JSON.stringify({ token: ui.token }) });
    assert.equal(foreign.status, 403, 'a foreign page cannot log the browser in');
    const ok = await request(ui.port, '/api/session', { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token: ui.token }) });
    assert.equal(ok.status, 204);
    const cookie = ok.headers['set-cookie']![0]!;
    assert.match(cookie, new RegExp(`^vmdesk-${ui.port}=`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const page = await request(ui.port, '/', { headers: { cookie: cookie.split(';')[0]! } });
    assert.equal(page.status, 200);
    assert.match(page.body, /dashboard\.js/);
  });

  it('refuses a foreign Host (DNS rebinding) even with the token', async () => {
    for (const host of ['evil.example', `evil.example:${ui.port}`, `127.0.0.1:${ui.port + 1}`]) {
      const r = await request(ui.port, '/api/hosts', { headers: { ...bearer, host } });
      assert.equal(r.status, 403, host);
    }
    assert.equal((await request(ui.port, '/api/hosts', { headers: { ...bearer, host: `localhost:${ui.port}` } })).status, 200);
  });

  it('puts a strict CSP and no-store on every answer, refusals included', async () => {
    for (const r of [await request(ui.port, '/'), await request(ui.port, '/api/hosts', { headers: bearer }), await request(ui.port, '/assets/console.js')]) {
      const csp = String(r.headers['content-security-policy']);
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['cache-control'], 'no-store');
    }
  });

  it('serves the bundle without a token, and nothing outside it', async () => {
    const js = await request(ui.port, '/assets/console.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    // The path is normalised first: `/assets/../x` is `/x`, which needs the token like any other page.
    for (const path of ['/assets/../package.json', '/assets/%2e%2e/package.json', '/assets/..%2fpackage.json']) {
      const r = await request(ui.port, path);
      assert.ok(r.status === 403 || r.status === 404, `${path}: ${r.status}`);
      assert.doesNotMatch(r.body, /"devDependencies"/);
    }
  });

  it('needs POST and a same-site Origin for mutating routes', async () => {
    const path = `/api/hosts/${site.hostName}/vms/${UUID['win2016']}/rdp`;
    assert.equal((await request(ui.port, path, { headers: bearer })).status, 405);
    const cookie = `vmdesk-${ui.port}=${ui.token}`;
    assert.equal((await request(ui.port, path, { method: 'POST', headers: { cookie, origin: 'http://evil.example' }, body: '{}' })).status, 403);
    assert.equal((await request(ui.port, path, { method: 'POST', headers: { cookie }, body: '{}' })).status, 403, 'no Origin with a cookie');
  });

  it('refuses console WebSockets without the token, with a wrong one, from a foreign Origin or Host', async () => {
    const path = `/ws/console?host=${site.hostName}&uuid=${UUID['win2016']}`;
    const cookie = `vmdesk-${ui.port}=${ui.token}`;
    assert.equal((await wsTry(ui.port, path, { origin })).status, 403, 'no token');
    assert.equal((await wsTry(ui.port, path, { origin, cookie: `vmdesk-${ui.port}=wrong` })).status, 403, 'wrong token');
    assert.equal((await wsTry(ui.port, path, { origin: 'http://evil.example', cookie })).status, 403, 'foreign Origin');
    assert.equal((await wsTry(ui.port, path, { cookie })).status, 403, 'no Origin');
    assert.equal((await wsTry(ui.port, path, { origin: 'http://evil.example:80', cookie, host: 'evil.example' })).status, 403, 'foreign Host');
  });

  it('lists the demo VMs through the two-hop chain', async () => {
    const r = await request(ui.port, `/api/hosts/${site.hostName}/vms`, { headers: bearer });
    assert.equal(r.status, 200, r.body);
    const { vms } = JSON.parse(r.body) as { vms: { name: string; state: string; consoles: { isUsable: boolean; isExposed: boolean }[] }[] };
    const win = vms.find((v) => v.name === 'win2016');
    assert.ok(win);
    assert.equal(win.state, 'running');
    assert.equal(win.consoles[0]?.isUsable, true);
    assert.ok(vms.some((v) => v.consoles.some((c) => c.isExposed)), 'the demo has an exposed console to flag');
    assert.equal(site.jump.connectionCount, 1);
  });

  it('bridges a console WebSocket to the VM (RFB greeting), and names the error when it cannot', async () => {
    const cookie = `vmdesk-${ui.port}=${ui.token}`;
    const ok = await wsTry(ui.port, `/ws/console?host=${site.hostName}&uuid=${UUID['win2016']}`, { origin, cookie });
    assert.equal(ok.first?.toString('latin1'), 'RFB 003.008\n');
    const missing = await wsTry(ui.port, `/ws/console?host=${site.hostName}&uuid=${UUID.gone}`, { origin, cookie });
    assert.equal(missing.close?.code, 4000);
    assert.match(missing.close!.reason, /^VM_NOT_FOUND: /);
    const unknownHost = await request(ui.port, '/api/hosts/elsewhere/vms', { headers: bearer });
    assert.equal(unknownHost.status, 404);
  });

  it('starts an RDP forward on loopback and serves its .rdp file', async () => {
    const path = `/api/hosts/${site.hostName}/vms/${UUID['win2016']}/rdp`;
    const r = await request(ui.port, path, { method: 'POST', headers: { origin, cookie: `vmdesk-${ui.port}=${ui.token}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 200, r.body);
    const fwd = JSON.parse(r.body) as { address: string; port: number; rdpFile: string };
    assert.match(fwd.address, /^127\.0\.0\.1:\d+$/);
    const again = JSON.parse((await request(ui.port, path, { method: 'POST', headers: bearer, body: '{}' })).body) as { port: number };
    assert.equal(again.port, fwd.port, 'one forward per VM');
    const file = await request(ui.port, fwd.rdpFile, { headers: bearer });
    assert.equal(file.status, 200);
    assert.match(file.body, new RegExp(`full address:s:127\\.0\\.0\\.1:${fwd.port}`));
    assert.match(String(file.headers['content-disposition']), /attachment/);
  });

  it("moves an exposed console to loopback (POST only, 127.0.0.1 only), and the list shows it", async () => {
    const path = `/api/hosts/${site.hostName}/vms/${UUID['legacy-exposed']}/vnc-listen`;
    const headers = { origin, cookie: `vmdesk-${ui.port}=${ui.token}`, 'content-type': 'application/json' };
    const wide = await request(ui.port, path, { method: 'POST', headers, body: JSON.stringify({ address: '0.0.0.0' }) });
    assert.equal(wide.status, 400, 'the dashboard never exposes a console');
    const r = await request(ui.port, path, { method: 'POST', headers, body: JSON.stringify({ address: '127.0.0.1', restart: true }) });
    assert.equal(r.status, 200, r.body);
    const change = JSON.parse(r.body) as { isChanged: boolean; isRestarted: boolean; backupPath?: string; backupXml?: string };
    assert.equal(change.isChanged, true);
    assert.equal(change.isRestarted, true);
    assert.match(change.backupPath ?? '', /\.xml$/);
    assert.equal(change.backupXml, undefined, 'the saved definition (it may hold a VNC password) is not sent to the browser');
    const { vms } = JSON.parse((await request(ui.port, `/api/hosts/${site.hostName}/vms`, { headers: bearer })).body) as { vms: { name: string; consoles: { isExposed: boolean; address: string }[] }[] };
    const vm = vms.find((v) => v.name === 'legacy-exposed')!;
    assert.equal(vm.consoles[0]!.isExposed, false);
    assert.match(vm.consoles[0]!.address, /^127\.0\.0\.1:/);
  });

  it('opens the console channel when the console page is requested, and its WebSocket uses that one', async () => {
    const cookie = `vmdesk-${ui.port}=${ui.token}`;
    const before = site.hypervisor.counters.channels;
    const page = await request(ui.port, `/console?host=${site.hostName}&uuid=${UUID['ubuntu-desktop']}`, { headers: { cookie } });
    assert.equal(page.status, 200);
    for (let i = 0; i < 100 && site.hypervisor.counters.channels === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(site.hypervisor.counters.channels, before + 1, 'the channel is opened before any WebSocket');
    const ws = await wsTry(ui.port, `/ws/console?host=${site.hostName}&uuid=${UUID['ubuntu-desktop']}`, { origin, cookie });
    assert.equal(ws.first?.toString('latin1'), 'RFB 003.008\n', 'the VM greeting waited in the prepared channel');
    assert.equal(site.hypervisor.counters.channels, before + 1, 'no second channel');
    assert.equal((await request(ui.port, `/console?host=${site.hostName}&uuid=${UUID['ubuntu-desktop']}`)).status, 403);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(site.hypervisor.counters.channels, before + 1, 'nothing is opened for a request without the token');
  });
});
