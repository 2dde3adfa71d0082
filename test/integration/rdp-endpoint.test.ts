/**
 * The RDCleanPath endpoint (/ws/rdp) with real sockets: the UI server, a real
 * two-hop SSH chain to the embedded demo site, and a small RDP server double
 * (answers the X.224 request with a confirm captured from freerdp-shadow-cli,
 * then TLS) standing at the demo win2016's address and port 3389. The ticket
 * in the PDU's proxy_auth is the only credential; the PDU's destination is
 * never used; the RDP page alone may compile WebAssembly.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';
import { HostSessions, startUiServer, type UiServer } from '../../src/server/index.js';
import { decodeRdCleanPath, encodeRdCleanPath, rdCleanPathLength, RDCLEANPATH_VERSION, type RdCleanPathPdu } from '../../src/console/rdcleanpath.js';

const fixture = (name: string) => readFileSync(new URL(`../../src/console/fixtures/${name}`, import.meta.url));
const X224_REQUEST = fixture('x224-request-freerdp-nla.bin');
const CONFIRM = fixture('x224-confirm-freerdp-shadow-hybrid.bin');
const WIN2016_IP = '192.168.122.217';
/** The demo VMs' UUIDs (src/demo/demo-inventory.ts): the API names a VM by host + UUID. */
const UUID = { win2016: 'cf033973-fff1-4b6f-afb3-e3276b4205f1', 'ubuntu-desktop': '97200831-9c83-4f63-a6a8-529cbc85d4d3', win2012: 'e9305d52-81e5-43f8-a8b9-e0d023a03981' } as const;

interface RdpDouble {
  port: number;
  /** X.224 requests received, one per connection. */
  requests: Buffer[];
  server: net.Server;
}

/** Reads the X.224 request, answers the captured confirm, then speaks TLS and echoes upper-cased. */
async function startRdpDouble(): Promise<RdpDouble> {
  const requests: Buffer[] = [];
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', (req) => {
      requests.push(req);
      sock.pause();
      sock.write(CONFIRM);
      const secure = new tls.TLSSocket(sock, { isServer: true, cert: fixture('rdp-test-server.crt'), key: fixture('rdp-test-server.key') });
      secure.on('error', () => {});
      secure.on('data', (b: Buffer) => secure.write(b.toString('latin1').toUpperCase()));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, requests, server };
}

function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host: `127.0.0.1:${port}`, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Opens /ws/rdp, sends one PDU, resolves with the reply PDU and the open socket. */
function rdcleanpath(port: number, pdu: RdCleanPathPdu): Promise<{ reply: RdCleanPathPdu; ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/rdp`, { headers: { origin: `http://127.0.0.1:${port}` }, perMessageDeflate: false });
    let buf = Buffer.alloc(0);
    ws.on('error', reject);
    ws.on('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('open', () => ws.send(encodeRdCleanPath(pdu)));
    const onMessage = (m: Buffer) => {
      buf = Buffer.concat([buf, m]);
      const n = rdCleanPathLength(buf);
      if (n !== undefined && buf.length >= n) {
        ws.off('message', onMessage);
        resolve({ reply: decodeRdCleanPath(buf.subarray(0, n)), ws });
      }
    };
    ws.on('message', onMessage);
    ws.on('close', () => reject(new Error('closed before a reply')));
  });
}

describe('RDP endpoint (/ws/rdp)', () => {
  let site: DemoSite;
  let sessions: HostSessions;
  let ui: UiServer;
  let rdp: RdpDouble;
  const logged: string[] = [];
  const headers = () => ({ authorization: `Bearer ${ui.token}`, origin: `http://127.0.0.1:${ui.port}`, 'content-type': 'application/json' });
  const ticket = async (purpose: string, vm: keyof typeof UUID = 'win2016'): Promise<string> => {
    const r = await request(ui.port, '/api/tickets', { method: 'POST', headers: headers(), body: JSON.stringify({ purpose, host: site.hostName, uuid: UUID[vm] }) });
    assert.equal(r.status, 200, r.body.toString());
    return (JSON.parse(r.body.toString()) as { ticket: string }).ticket;
  };
  const pdu = (over: Partial<RdCleanPathPdu>): RdCleanPathPdu => ({ version: RDCLEANPATH_VERSION, destination: 'win2016:3389', x224ConnectionPdu: X224_REQUEST, ...over });

  before(async () => {
    rdp = await startRdpDouble();
    site = await startDemoSite();
    const route = site.libvirt.routeTcp.bind(site.libvirt);
    // win2016's RDP port on the demo host is the double; nothing else on 3389 answers.
    site.libvirt.routeTcp = (host, port) => (host === WIN2016_IP && port === 3389 ? { host: '127.0.0.1', port: rdp.port } : route(host, port));
    sessions = new HostSessions([{ name: site.hostName, dest: 'demo', uri: site.libvirtUri, planHops: async () => site.hops }]);
    ui = await startUiServer({ sessions, isDemo: true, log: (l) => logged.push(l) });
  });
  after(async () => {
    await ui.close();
    await sessions.close();
    await site.stop();
    rdp.server.close();
  });

  it('relays to the VM the ticket names, found by MAC, whatever destination the PDU claims', async () => {
    const before = rdp.requests.length;
    // A forged destination: the double's own loopback port (SSRF would reach it directly).
    const { reply, ws } = await rdcleanpath(ui.port, pdu({ proxyAuth: await ticket('rdp'), destination: `127.0.0.1:${rdp.port}` }));
    assert.equal(reply.error, undefined);
    assert.equal(reply.serverAddr, `${WIN2016_IP}:3389`, "the guest's address from the hypervisor's leases");
    assert.deepEqual(reply.x224ConnectionPdu, CONFIRM);
    assert.equal(reply.serverCertChain?.length, 1);
    assert.deepEqual(rdp.requests.slice(before), [X224_REQUEST]);
    const echoed = new Promise<string>((r) => ws.once('message', (m: Buffer) => r(m.toString())));
    ws.send(Buffer.from('after tls'));
    assert.equal(await echoed, 'AFTER TLS');
    ws.close();
  });

  it('refuses a PDU without a valid ticket with HTTP 401, opening nothing', async () => {
    const before = rdp.requests.length;
    const consoleTicket = await ticket('console');
    const used = await ticket('rdp');
    await rdcleanpath(ui.port, pdu({ proxyAuth: used })).then(({ ws }) => ws.close());
    const afterUse = rdp.requests.length;
    for (const proxyAuth of [undefined, '', 'forged', ui.token, consoleTicket, used]) {
      const { reply, ws } = await rdcleanpath(ui.port, pdu(proxyAuth === undefined ? {} : { proxyAuth }));
      assert.deepEqual(reply.error, { errorCode: 1, httpStatusCode: 401 }, `proxy_auth ${proxyAuth === ui.token ? '(the token)' : JSON.stringify(proxyAuth)}`);
      ws.close();
    }
    assert.equal(afterUse, before + 1);
    assert.equal(rdp.requests.length, afterUse, 'no refused PDU reached the RDP server');
    assert.ok(!logged.some((l) => l.includes(used) || l.includes(ui.token)), 'tickets and the token never appear in the log');
    assert.deepEqual(logged.filter((l) => l.includes('RDP_UNAUTHORIZED')), [], "a client's refused PDU is not logged");
  });

  it('refuses an RDP ticket up front for a VM that is shut off, with its code', async () => {
    const r = await request(ui.port, '/api/tickets', { method: 'POST', headers: headers(), body: JSON.stringify({ purpose: 'rdp', host: site.hostName, uuid: UUID.win2012 }) });
    assert.equal(r.status, 409);
    assert.match((JSON.parse(r.body.toString()) as { error: { code: string } }).error.code, /^VM_(NOT_RUNNING|NO_IP)$/);
  });

  it("answers a closed RDP port with WSA 10061 (connection refused)", async () => {
    const { reply, ws } = await rdcleanpath(ui.port, pdu({ proxyAuth: await ticket('rdp', 'ubuntu-desktop') }));
    assert.deepEqual(reply.error, { errorCode: 1, wsaLastError: 10061 });
    ws.close();
  });

  it("gives 'wasm-unsafe-eval' to the RDP page only, and serves the hashed .wasm as application/wasm, immutable", async () => {
    const rdpPage = await request(ui.port, `/rdp?host=h&uuid=${UUID.win2016}`);
    assert.equal(rdpPage.status, 200);
    assert.match(String(rdpPage.headers['content-security-policy']), /script-src 'self' 'wasm-unsafe-eval'/);
    for (const path of ['/', '/console']) assert.doesNotMatch(String((await request(ui.port, path)).headers['content-security-policy']), /wasm/);
    const js = (await request(ui.port, '/assets/rdp.js')).body.toString();
    const wasmPath = /\/assets\/ironrdp-[0-9a-f]{16}\.wasm/.exec(js)?.[0];
    assert.ok(wasmPath, 'rdp.js names the hashed wasm');
    const wasm = await request(ui.port, wasmPath);
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers['content-type'], 'application/wasm');
    assert.match(String(wasm.headers['cache-control']), /immutable/);
    assert.deepEqual(wasm.body.subarray(0, 4), Buffer.from([0, 0x61, 0x73, 0x6d]), 'a WebAssembly module');
    assert.match(String((await request(ui.port, '/assets/rdp.js')).headers['cache-control']), /no-store/);
  });
});
