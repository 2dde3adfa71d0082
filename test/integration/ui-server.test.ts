/**
 * The UI server with real HTTP and WebSocket requests: the bearer token,
 * tickets, Host and Origin checks refuse what they must (docs/ui.md), a
 * cookie opens nothing, malformed bodies are 400 with a code, the API answers through
 * a real two-hop SSH chain to the embedded demo site, and a console
 * WebSocket carries the demo VM's RFB greeting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { WebSocket } from 'ws';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';
import { HostSessions, startUiServer, type UiServer } from '../../src/server/index.js';
import { TICKET_TTL_MS } from '../../src/server/access.js';
import { MAX_BODY_BYTES } from '../../src/server/request-body.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function errorCode(r: Reply): string | undefined {
  return (JSON.parse(r.body) as { error?: { code?: string } }).error?.code;
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

/** The status of an event-stream request and, when it opened, its first bytes. */
function sseFirst(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      res.once('data', (c: Buffer) => {
        resolve({ status: res.statusCode!, text: c.toString('utf8') });
        req.destroy();
      });
      res.once('end', () => resolve({ status: res.statusCode!, text: '' }));
    });
    req.on('error', reject);
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
  /** The tickets' clock: a test moves it past a ticket's lifetime. */
  const clock = { ms: Date.now() };
  /** What the server logged: a client's bad input must add nothing. */
  const logged: string[] = [];
  /** Every command line the demo hypervisor ran. */
  const commands: string[] = [];

  const postTicket = (body: unknown, headers: Record<string, string>) =>
    request(ui.port, '/api/tickets', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const ticket = async (body: unknown): Promise<string> => {
    const r = await postTicket(body, { ...bearer, origin });
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { ticket: string }).ticket;
  };

  before(async () => {
    site = await startDemoSite();
    const run = site.libvirt.run.bind(site.libvirt);
    site.libvirt.run = (command, stdin) => {
      commands.push(command);
      return run(command, stdin);
    };
    sessions = new HostSessions([{ name: site.hostName, dest: 'demo', uri: site.libvirtUri, planHops: async () => site.hops }]);
    ui = await startUiServer({ sessions, isDemo: true, now: () => clock.ms, log: (l) => logged.push(l) });
    origin = `http://127.0.0.1:${ui.port}`;
    bearer = { authorization: `Bearer ${ui.token}` };
  });
  after(async () => {
    await ui.close();
    await sessions.close();
    await site.stop();
  });

  it('prints a URL that carries the token only in the fragment', () => {
    const u = new URL(ui.url(`/console?host=a&uuid=${UUID.win2016}`));
    assert.equal(u.hostname, '127.0.0.1');
    assert.equal(u.hash, `#token=${ui.token}`);
    assert.ok(!u.search.includes(ui.token));
    assert.ok(ui.token.length >= 43, 'a 256-bit token');
  });

  it('serves the two pages as static shells to anyone, holding no token and setting no cookie', async () => {
    for (const path of ['/', `/console?host=x&uuid=${UUID.win2016}`]) {
      const page = await request(ui.port, path);
      assert.equal(page.status, 200, path);
      assert.match(String(page.headers['content-type']), /text\/html/);
      assert.ok(!page.body.includes(ui.token), 'no secret in the shell');
      assert.equal(page.headers['set-cookie'], undefined);
    }
    assert.match((await request(ui.port, '/')).body, /dashboard\.js/);
    assert.match((await request(ui.port, '/console')).body, /console-boot\.js/);
  });

  it('marks a page another site navigated to, so its scripts ignore the tab\'s stored token', async () => {
    assert.match((await request(ui.port, '/', { headers: { 'sec-fetch-site': 'cross-site' } })).body, /<html lang="en" data-entry="foreign">/);
    assert.match((await request(ui.port, '/console', { headers: { 'sec-fetch-site': 'same-site' } })).body, /data-entry="foreign"/, 'another port of 127.0.0.1 is the same site');
    assert.doesNotMatch((await request(ui.port, '/', { headers: { 'sec-fetch-site': 'same-origin' } })).body, /data-entry/);
    assert.doesNotMatch((await request(ui.port, '/', { headers: { 'sec-fetch-site': 'none' } })).body, /data-entry/, 'typed or opened from the link');
  });

  it('answers the API only to the bearer token: none, a wrong one, another scheme are 401', async () => {
    const none = await request(ui.port, '/api/hosts');
    assert.equal(none.status, 401);
    assert.equal(errorCode(none), 'UI_UNAUTHORIZED');
    for (const authorization of ['Bearer nope', `Bearer ${ui.token.slice(0, -1)}x`, `Basic ${ui.token}`, 'Bearer', `Bearer ${ui.token} extra`]) {
      const r = await request(ui.port, '/api/hosts', { headers: { authorization } });
      assert.equal(r.status, 401, authorization);
      assert.equal(errorCode(r), 'UI_UNAUTHORIZED');
    }
    const ok = await request(ui.port, '/api/hosts', { headers: bearer });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['set-cookie'], undefined);
    const body = JSON.parse(ok.body) as { demo: boolean; hosts: { name: string }[] };
    assert.equal(body.demo, true);
    assert.deepEqual(
      body.hosts.map((h) => h.name),
      [site.hostName],
    );
  });

  it('opens nothing for a cookie carrying the token, and a wrong bearer with that cookie is 401', async () => {
    // What the previous scheme's cookie looked like, and what any server on 127.0.0.1 would have received.
    const cookie = `vmdesk-${ui.port}=${ui.token}; token=${ui.token}`;
    assert.equal((await request(ui.port, '/api/hosts', { headers: { cookie } })).status, 401);
    assert.equal((await request(ui.port, '/api/hosts', { headers: { cookie, authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await request(ui.port, '/api/events', { headers: { cookie } })).status, 401);
    assert.equal((await postTicket({ purpose: 'events' }, { cookie, origin })).status, 401);
    assert.equal((await request(ui.port, `/api/hosts/${site.hostName}/vms/${UUID['win2016']}/rdp`, { method: 'POST', headers: { cookie, origin, authorization: 'Bearer wrong' }, body: '{}' })).status, 401);
    assert.equal((await wsTry(ui.port, `/ws/console?host=${site.hostName}&uuid=${UUID['win2016']}`, { origin, cookie })).status, 401);
    assert.equal((await wsTry(ui.port, `/ws/console?host=${site.hostName}&uuid=${UUID['win2016']}`, { origin, cookie, authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await request(ui.port, '/api/session', { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token: ui.token }) })).headers['set-cookie'], undefined, 'no route sets a cookie');
  });

  it('refuses an API request another origin made (Sec-Fetch-Site), even with the token', async () => {
    for (const site of ['same-site', 'cross-site']) {
      const r = await request(ui.port, '/api/hosts', { headers: { ...bearer, 'sec-fetch-site': site } });
      assert.equal(r.status, 403, site);
      assert.equal(errorCode(r), 'UI_FORBIDDEN');
    }
    assert.equal((await request(ui.port, '/api/hosts', { headers: { ...bearer, 'sec-fetch-site': 'same-origin' } })).status, 200);
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
    // The path is normalised first: `/assets/../x` is `/x`, which needs the token like any API route.
    for (const path of ['/assets/../package.json', '/assets/%2e%2e/package.json', '/assets/..%2fpackage.json']) {
      const r = await request(ui.port, path);
      assert.ok(r.status === 401 || r.status === 404, `${path}: ${r.status}`);
      assert.doesNotMatch(r.body, /"devDependencies"/);
    }
  });

  it('needs POST and its own Origin for mutating routes, bearer or not', async () => {
    const path = `/api/hosts/${site.hostName}/vms/${UUID['win2016']}/rdp`;
    assert.equal((await request(ui.port, path, { headers: bearer })).status, 405);
    assert.equal((await request(ui.port, path, { method: 'POST', headers: { ...bearer, origin: 'http://evil.example' }, body: '{}' })).status, 403);
    assert.equal((await request(ui.port, path, { method: 'POST', headers: { ...bearer, origin: `http://127.0.0.1:${ui.port + 1}` }, body: '{}' })).status, 403, 'another port is another origin');
    assert.equal((await request(ui.port, path, { method: 'POST', headers: bearer, body: '{}' })).status, 403, 'no Origin, even with the bearer');
    assert.equal((await postTicket({ purpose: 'events' }, bearer)).status, 403, 'tickets too');
  });

  it('opens the event stream with a ticket once, and never with a used, expired or console ticket', async () => {
    const t = await ticket({ purpose: 'events' });
    const first = await sseFirst(ui.port, `/api/events?ticket=${t}`);
    assert.equal(first.status, 200);
    assert.match(first.text, /^retry: \d+\n\nevent: hosts\n/);
    assert.equal((await sseFirst(ui.port, `/api/events?ticket=${t}`)).status, 401, 'single use');
    assert.equal((await sseFirst(ui.port, '/api/events')).status, 401, 'no ticket');
    assert.equal((await sseFirst(ui.port, `/api/events?ticket=${await ticket({ purpose: 'console', host: site.hostName, uuid: UUID['win2016'] })}`)).status, 401, "a console's ticket");
    const late = await ticket({ purpose: 'events' });
    clock.ms += TICKET_TTL_MS;
    assert.equal((await sseFirst(ui.port, `/api/events?ticket=${late}`)).status, 401, 'expired');
    assert.equal((await sseFirst(ui.port, '/api/events', bearer)).status, 200, 'a client that can send the header needs no ticket');
  });

  it('opens a console WebSocket with its ticket once, for that console only', async () => {
    const path = (vm: keyof typeof UUID, t: string) => `/ws/console?host=${site.hostName}&uuid=${UUID[vm]}&ticket=${t}`;
    const t = await ticket({ purpose: 'console', host: site.hostName, uuid: UUID['win2016'] });
    assert.equal((await wsTry(ui.port, path('win2016', t), { origin })).first?.toString('latin1'), 'RFB 003.008\n');
    assert.equal((await wsTry(ui.port, path('win2016', t), { origin })).status, 401, 'single use');
    assert.equal((await wsTry(ui.port, path('ubuntu-desktop', await ticket({ purpose: 'console', host: site.hostName, uuid: UUID['win2016'] })), { origin })).status, 401, "another console's ticket");
    assert.equal((await wsTry(ui.port, path('win2016', await ticket({ purpose: 'events' })), { origin })).status, 401, "the event stream's ticket");
    const late = await ticket({ purpose: 'console', host: site.hostName, uuid: UUID['win2016'] });
    clock.ms += TICKET_TTL_MS;
    assert.equal((await wsTry(ui.port, path('win2016', late), { origin })).status, 401, 'expired');
    const good = await ticket({ purpose: 'console', host: site.hostName, uuid: UUID['win2016'] });
    assert.equal((await wsTry(ui.port, path('win2016', good), { origin, authorization: 'Bearer wrong' })).status, 401, 'a wrong header is not overruled by a good ticket');
  });

  it('refuses console WebSockets without a credential, from a foreign Origin or Host', async () => {
    const path = `/ws/console?host=${site.hostName}&uuid=${UUID['win2016']}`;
    assert.equal((await wsTry(ui.port, path, { origin })).status, 401, 'no ticket, no token');
    assert.equal((await wsTry(ui.port, `${path}&ticket=${ui.token}`, { origin })).status, 401, 'the token is not a ticket');
    const t = await ticket({ purpose: 'console', host: site.hostName, uuid: UUID['win2016'] });
    assert.equal((await wsTry(ui.port, `${path}&ticket=${t}`, { origin: 'http://evil.example' })).status, 403, 'foreign Origin');
    assert.equal((await wsTry(ui.port, `${path}&ticket=${t}`, {})).status, 403, 'no Origin');
    assert.equal((await wsTry(ui.port, path, { origin: 'http://evil.example:80', ...bearer, host: 'evil.example' })).status, 403, 'foreign Host');
    assert.equal((await wsTry(ui.port, path, { ...bearer })).status, 403, 'no Origin, even with the bearer');
  });

  it('answers every malformed body 400 with a code, and logs no stack trace', async () => {
    const post = (path: string, body: string) => request(ui.port, path, { method: 'POST', headers: { ...bearer, origin, 'content-type': 'application/json' }, body });
    const vmRoute = `/api/hosts/${site.hostName}/vms/${UUID['win2016']}`;
    const cases: [string, string, string][] = [
      ['/api/tickets', 'null', 'UI_BODY_INVALID'],
      ['/api/tickets', '[]', 'UI_BODY_INVALID'],
      ['/api/tickets', '"events"', 'UI_BODY_INVALID'],
      ['/api/tickets', '7', 'UI_BODY_INVALID'],
      ['/api/tickets', '{}', 'UI_BODY_INVALID'],
      ['/api/tickets', '{"purpose": 1}', 'UI_BODY_INVALID'],
      ['/api/tickets', '{"purpose": "everything"}', 'UI_BODY_INVALID'],
      ['/api/tickets', '{"purpose": "events", "extra": true}', 'UI_BODY_INVALID'],
      ['/api/tickets', '{"purpose": "console", "host": "demo-kvm"}', 'UI_BODY_INVALID'],
      ['/api/tickets', '{"purpose": "console", "host": ["demo-kvm"], "uuid": "win2016"}', 'UI_BODY_INVALID'],
      ['/api/tickets', '{"purpose": "events", "uuid": "win2016"}', 'UI_BODY_INVALID'],
      ['/api/tickets', '{"purpose":', 'UI_BODY_NOT_JSON'],
      [`${vmRoute}/rdp`, 'null', 'UI_BODY_INVALID'],
      [`${vmRoute}/rdp`, '{"port": 1}', 'UI_BODY_INVALID'],
      [`${vmRoute}/vnc-listen`, 'null', 'UI_BODY_INVALID'],
      [`${vmRoute}/vnc-listen`, '{"restart": "yes"}', 'UI_BODY_INVALID'],
      [`${vmRoute}/vnc-listen`, '{"address": "0.0.0.0"}', 'UI_BODY_INVALID'],
      [`${vmRoute}/vnc-listen`, '{"address": null}', 'UI_BODY_INVALID'],
      ['/api/session', 'null', 'UI_NOT_FOUND'],
    ];
    for (const [path, body, code] of cases) {
      const r = await post(path, body);
      assert.equal(errorCode(r), code, `${path} ${body}: ${r.status} ${r.body}`);
      assert.equal(r.status, code === 'UI_NOT_FOUND' ? 404 : 400, `${path} ${body}`);
    }
    const big = await post('/api/tickets', JSON.stringify({ purpose: 'events', pad: 'x'.repeat(MAX_BODY_BYTES) }));
    assert.equal(big.status, 413);
    assert.equal(errorCode(big), 'UI_BODY_TOO_LARGE');
    assert.deepEqual(logged, [], 'nothing logged for a client\'s bad input');
  });

  it('answers a request target that is not a URL 400 (HTTP and upgrade), and keeps serving', async () => {
    const raw = (extra: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = net.connect(ui.port, '127.0.0.1', () => sock.write(`GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${ui.port}\r\n${extra}Connection: close\r\n\r\n`));
        let out = '';
        sock.on('data', (d: Buffer) => (out += d.toString('latin1')));
        sock.on('close', () => resolve(out.split('\r\n')[0]!));
        sock.on('error', reject);
      });
    assert.equal(await raw(''), 'HTTP/1.1 400 Bad Request');
    assert.equal(await raw(`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: ${origin}\r\n`), 'HTTP/1.1 400 Bad Request');
    assert.equal((await request(ui.port, '/api/hosts', { headers: bearer })).status, 200, 'still serving');
    assert.deepEqual(logged, []);
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
    const ok = await wsTry(ui.port, `/ws/console?host=${site.hostName}&uuid=${UUID['win2016']}`, { origin, ...bearer });
    assert.equal(ok.first?.toString('latin1'), 'RFB 003.008\n');
    const t = await ticket({ purpose: 'console', host: site.hostName, uuid: UUID.gone });
    const missing = await wsTry(ui.port, `/ws/console?host=${site.hostName}&uuid=${UUID.gone}&ticket=${t}`, { origin });
    assert.equal(missing.close?.code, 4000);
    assert.match(missing.close!.reason, /^VM_NOT_FOUND: /);
    const unknownHost = await request(ui.port, '/api/hosts/elsewhere/vms', { headers: bearer });
    assert.equal(unknownHost.status, 404);
  });

  it('starts an RDP forward on loopback and serves its .rdp file', async () => {
    const path = `/api/hosts/${site.hostName}/vms/${UUID['win2016']}/rdp`;
    const r = await request(ui.port, path, { method: 'POST', headers: { ...bearer, origin, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 200, r.body);
    const fwd = JSON.parse(r.body) as { address: string; port: number; rdpFile: string };
    assert.match(fwd.address, /^127\.0\.0\.1:\d+$/);
    const again = JSON.parse((await request(ui.port, path, { method: 'POST', headers: { ...bearer, origin } })).body) as { port: number };
    assert.equal(again.port, fwd.port, 'one forward per VM (an empty body is an empty object)');
    assert.equal((await request(ui.port, fwd.rdpFile)).status, 401, 'the file needs the token');
    const file = await request(ui.port, fwd.rdpFile, { headers: bearer });
    assert.equal(file.status, 200);
    assert.match(file.body, new RegExp(`full address:s:127\\.0\\.0\\.1:${fwd.port}`));
    assert.match(String(file.headers['content-disposition']), /attachment/);
  });

  it("moves an exposed console to loopback (POST only, 127.0.0.1 only), and the list shows it", async () => {
    const path = `/api/hosts/${site.hostName}/vms/${UUID['legacy-exposed']}/vnc-listen`;
    const headers = { origin, ...bearer, 'content-type': 'application/json' };
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

  it('runs nothing on the hypervisor for a console page request, with or without a cookie', async () => {
    const channels = site.hypervisor.counters.channels;
    commands.length = 0;
    for (const headers of [{}, { cookie: `vmdesk-${ui.port}=${ui.token}` }, { ...bearer }]) {
      const page = await request(ui.port, `/console?host=${site.hostName}&uuid=${UUID['ubuntu-desktop']}`, { headers });
      assert.equal(page.status, 200);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(commands, [], 'no command reached the hypervisor');
    assert.equal(site.hypervisor.counters.channels, channels, 'no channel was opened');
  });

  it("opens the console's channel when its page asks for a ticket, and its WebSocket uses that one", async () => {
    const before = site.hypervisor.counters.channels;
    commands.length = 0;
    const t = await ticket({ purpose: 'console', host: site.hostName, uuid: UUID['ubuntu-desktop'] });
    for (let i = 0; i < 100 && site.hypervisor.counters.channels === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(site.hypervisor.counters.channels, before + 1, 'the channel is opened before any WebSocket');
    assert.ok(commands.length > 0, 'the console was looked up on the hypervisor');
    const ws = await wsTry(ui.port, `/ws/console?host=${site.hostName}&uuid=${UUID['ubuntu-desktop']}&ticket=${t}`, { origin });
    assert.equal(ws.first?.toString('latin1'), 'RFB 003.008\n', 'the VM greeting waited in the prepared channel');
    assert.equal(site.hypervisor.counters.channels, before + 1, 'no second channel');
    commands.length = 0;
    assert.equal((await postTicket({ purpose: 'console', host: site.hostName, uuid: UUID['ubuntu-desktop'] }, { origin, cookie: `vmdesk-${ui.port}=${ui.token}` })).status, 401);
    assert.equal((await postTicket({ purpose: 'console', host: site.hostName, uuid: UUID['ubuntu-desktop'] }, { ...bearer, origin: 'http://evil.example' })).status, 403);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(commands, [], 'nothing runs for a refused ticket request');
    assert.equal(site.hypervisor.counters.channels, before + 1);
  });
});
