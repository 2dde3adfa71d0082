import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import tls from 'node:tls';
import { VmdeskError } from '../errors.js';
import { decodeRdCleanPath, encodeRdCleanPath, rdCleanPathLength, RDCLEANPATH_VERSION, type RdCleanPathPdu } from './rdcleanpath.js';
import { serveRdCleanPath, type RdpUpstream } from './rdp-proxy.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const x224Request = fixture('x224-request-freerdp-nla.bin');
const hybridConfirm = fixture('x224-confirm-freerdp-shadow-hybrid.bin');
const failureConfirm = fixture('x224-confirm-failure-hybrid-required.bin');
const cert = fixture('rdp-test-server.crt');
const key = fixture('rdp-test-server.key');

/** Two connected in-memory streams (no sockets): what one writes, the other reads. */
function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (i: number) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        ends[1 - i]!.push(chunk);
        cb();
      },
      final(cb) {
        ends[1 - i]!.push(null);
        cb();
      },
    });
  ends.push(make(0), make(1));
  return [ends[0]!, ends[1]!];
}

/** Reads one whole PDU from the proxy's side of the browser pair. */
function readPdu(browser: Duplex): Promise<{ pdu: RdCleanPathPdu; rest: Buffer }> {
  let buf = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      const n = rdCleanPathLength(buf);
      if (n !== undefined && buf.length >= n) {
        browser.off('data', onData);
        browser.pause();
        resolve({ pdu: decodeRdCleanPath(buf.subarray(0, n)), rest: buf.subarray(n) });
      }
    };
    browser.on('data', onData);
    browser.once('end', () => reject(new Error(`ended after ${buf.length} bytes`)));
  });
}

/**
 * A fake RDP server on the far end of an in-memory channel: it reads the
 * X.224 request, answers with a captured confirm (in `splits` pieces), then
 * (for a success) runs TLS as server and echoes what the client sends, upper-cased.
 */
function fakeServer(confirm: Buffer, opts: { splits?: number; tls?: boolean } = {}): { open: () => Promise<RdpUpstream>; received: Promise<Buffer>; released: Promise<void> } {
  const [proxySide, serverSide] = duplexPair();
  let gotRequest!: (b: Buffer) => void;
  const received = new Promise<Buffer>((r) => (gotRequest = r));
  let onRelease!: () => void;
  const released = new Promise<void>((r) => (onRelease = r));
  serverSide.once('data', (req: Buffer) => {
    gotRequest(req);
    serverSide.pause();
    const n = opts.splits ?? 1;
    const step = Math.ceil(confirm.length / n);
    for (let i = 0; i < confirm.length; i += step) setImmediate(() => serverSide.write(confirm.subarray(i, i + step)));
    if (opts.tls === false) return;
    setImmediate(() => {
      const secure = new tls.TLSSocket(serverSide, { isServer: true, cert, key });
      secure.on('data', (b: Buffer) => secure.write(b.toString('latin1').toUpperCase()));
      secure.on('error', () => {});
    });
  });
  return { open: async () => ({ stream: proxySide, serverAddr: '192.168.122.50:3389', release: onRelease }), received, released };
}

const request = (over: Partial<RdCleanPathPdu> = {}): Buffer =>
  encodeRdCleanPath({ version: RDCLEANPATH_VERSION, destination: 'evil.example:3389', proxyAuth: 'good-ticket', x224ConnectionPdu: x224Request, ...over });

test('a request split over messages reaches the authorised server; the reply has its confirm, chain and address; then bytes relay', async () => {
  const server = fakeServer(hybridConfirm, { splits: 4 });
  const [browser, proxyEnd] = duplexPair();
  let seen: RdCleanPathPdu | undefined;
  const outcome = serveRdCleanPath(proxyEnd, {
    authorize: (pdu) => {
      seen = pdu;
      return pdu.proxyAuth === 'good-ticket' ? server.open : undefined;
    },
  });
  const req = request();
  browser.write(req.subarray(0, 5));
  setImmediate(() => browser.write(req.subarray(5)));
  assert.deepEqual(await server.received, x224Request, 'the X.224 request goes to the server as the client wrote it');
  const { pdu } = await readPdu(browser);
  assert.equal(seen?.destination, 'evil.example:3389');
  assert.equal(pdu.error, undefined);
  assert.deepEqual(pdu.x224ConnectionPdu, hybridConfirm);
  assert.equal(pdu.serverAddr, '192.168.122.50:3389', 'the address the proxy opened, not the destination asked for');
  assert.equal(pdu.serverCertChain?.length, 1);
  assert.deepEqual(pdu.serverCertChain?.[0], new X509Certificate(cert).raw);
  assert.deepEqual(await outcome, { kind: 'relayed', serverAddr: '192.168.122.50:3389' });
  browser.resume();
  const echoed = new Promise<string>((r) => browser.once('data', (b: Buffer) => r(b.toString())));
  browser.write('hello rdp');
  assert.equal(await echoed, 'HELLO RDP');
  browser.end();
  await server.released;
});

test('a PDU without a valid ticket is refused with HTTP 401 and nothing is opened', async () => {
  const [browser, proxyEnd] = duplexPair();
  let opened = false;
  const outcome = serveRdCleanPath(proxyEnd, {
    authorize: (pdu) =>
      pdu.proxyAuth === 'good-ticket'
        ? async () => {
            opened = true;
            throw new Error('not reached');
          }
        : undefined,
  });
  browser.write(request({ proxyAuth: 'forged' }));
  const { pdu } = await readPdu(browser);
  assert.deepEqual(pdu.error, { errorCode: 1, httpStatusCode: 401 });
  const o = await outcome;
  assert.equal(o.kind === 'refused' && o.error.code, 'RDP_UNAUTHORIZED');
  assert.equal(opened, false);
});

test('a server that requires NLA: its failure confirm goes back as a negotiation error', async () => {
  const server = fakeServer(failureConfirm, { tls: false });
  const [browser, proxyEnd] = duplexPair();
  const outcome = serveRdCleanPath(proxyEnd, { authorize: () => server.open });
  browser.write(request({ x224ConnectionPdu: fixture('x224-request-freerdp-tls.bin') }));
  const { pdu } = await readPdu(browser);
  assert.deepEqual(pdu.error, { errorCode: 2 });
  assert.deepEqual(pdu.x224ConnectionPdu, failureConfirm);
  const o = await outcome;
  assert.equal(o.kind === 'refused' && o.error.code, 'RDP_NEGOTIATION_FAILED');
  await server.released;
});

test('a refused channel is WSA 10061 (connection refused); a guest without an IP is HTTP 409', async () => {
  for (const [err, expected] of [
    [new VmdeskError('SSH_CHANNEL_REFUSED', 'h could not open 10.0.0.9:3389: Connection refused', { cause: new Error('(SSH) Channel open failure: Connection refused') }), { errorCode: 1, wsaLastError: 10061 }],
    [new VmdeskError('VM_NO_IP', 'no IPv4 address for win'), { errorCode: 1, httpStatusCode: 409 }],
  ] as const) {
    const [browser, proxyEnd] = duplexPair();
    const outcome = serveRdCleanPath(proxyEnd, { authorize: () => () => Promise.reject(err) });
    browser.write(request());
    assert.deepEqual((await readPdu(browser)).pdu.error, expected);
    assert.equal((await outcome).kind, 'refused');
  }
});

test('a request without an X.224 connection request, or garbage, is HTTP 400', async () => {
  for (const bytes of [request({ x224ConnectionPdu: Buffer.from('nope') }), Buffer.from('GET / HTTP/1.1\r\n\r\n')]) {
    const [browser, proxyEnd] = duplexPair();
    const outcome = serveRdCleanPath(proxyEnd, { authorize: () => () => Promise.reject(new Error('not reached')) });
    browser.write(bytes);
    assert.deepEqual((await readPdu(browser)).pdu.error, { errorCode: 1, httpStatusCode: 400 });
    const o = await outcome;
    assert.equal(o.kind === 'refused' && o.error.code, 'RDCLEANPATH_INVALID');
  }
});

test('a server that is not TLS after its confirm is a TLS error, reported with an alert', async () => {
  const [proxySide, serverSide] = duplexPair();
  serverSide.once('data', () => {
    serverSide.write(hybridConfirm);
    setImmediate(() => serverSide.write(Buffer.from('this is not a TLS ServerHello at all\r\n')));
  });
  const [browser, proxyEnd] = duplexPair();
  const outcome = serveRdCleanPath(proxyEnd, { authorize: () => async () => ({ stream: proxySide, serverAddr: '10.0.0.1:3389' }) });
  browser.write(request());
  const { pdu } = await readPdu(browser);
  assert.equal(pdu.error?.errorCode, 1);
  assert.equal(typeof pdu.error?.tlsAlertCode, 'number');
  const o = await outcome;
  assert.equal(o.kind === 'refused' && o.error.code, 'RDP_TLS_FAILED');
});
