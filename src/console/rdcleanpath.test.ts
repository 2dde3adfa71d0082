import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { decodeRdCleanPath, encodeRdCleanPath, httpError, MAX_PDU_BYTES, negotiationError, rdCleanPathLength, rdCleanPathResponse, RDCLEANPATH_VERSION, wsaError } from './rdcleanpath.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const x224Request = fixture('x224-request-freerdp-nla.bin');

const invalidCode = (fn: () => unknown) =>
  assert.throws(fn, (err: unknown) => isVmdeskError(err, 'RDCLEANPATH_INVALID'));

test('an HTTP 401 error PDU is the DER the IronRDP crate defines (explicit tags, version 3390)', () => {
  // Assembled by hand from crates/ironrdp-rdcleanpath: SEQUENCE { [0] INTEGER 3390, [1] SEQUENCE { [0] INTEGER 1, [1] INTEGER 401 } }
  const expected = Buffer.from('3015a00402020d3ea10d300ba003020101a10402020191', 'hex');
  assert.deepEqual(encodeRdCleanPath(httpError(401)), expected);
  assert.deepEqual(decodeRdCleanPath(expected), { version: RDCLEANPATH_VERSION, error: { errorCode: 1, httpStatusCode: 401 } });
});

test('a request round-trips: destination, proxy_auth and the X.224 request', () => {
  const req = { version: RDCLEANPATH_VERSION, destination: '10.0.0.5:3389', proxyAuth: 'ticket-é', x224ConnectionPdu: x224Request };
  const der = encodeRdCleanPath(req);
  assert.equal(rdCleanPathLength(der), der.length);
  assert.deepEqual(decodeRdCleanPath(der), req);
});

test('a response with a long certificate chain uses long-form lengths and round-trips', () => {
  const chain = [Buffer.alloc(1500, 1), Buffer.alloc(200, 2)];
  const der = encodeRdCleanPath(rdCleanPathResponse('192.168.122.10:3389', x224Request, chain));
  assert.equal(der[1], 0x82, 'two length bytes');
  assert.deepEqual(decodeRdCleanPath(der).serverCertChain, chain);
});

test('negotiation and WSA errors carry their fields', () => {
  const confirm = fixture('x224-confirm-failure-hybrid-required.bin');
  assert.deepEqual(decodeRdCleanPath(encodeRdCleanPath(negotiationError(confirm))), { version: RDCLEANPATH_VERSION, error: { errorCode: 2 }, x224ConnectionPdu: confirm });
  assert.deepEqual(decodeRdCleanPath(encodeRdCleanPath(wsaError(10061))).error, { errorCode: 1, wsaLastError: 10061 });
});

test('the length is known from the header alone, and not before', () => {
  const der = encodeRdCleanPath(rdCleanPathResponse('a:1', x224Request, [Buffer.alloc(300)]));
  assert.equal(rdCleanPathLength(der.subarray(0, 1)), undefined);
  assert.equal(rdCleanPathLength(der.subarray(0, 3)), undefined);
  assert.equal(rdCleanPathLength(der.subarray(0, 4)), der.length);
});

test('malformed PDUs are RDCLEANPATH_INVALID', () => {
  const good = encodeRdCleanPath({ version: RDCLEANPATH_VERSION, proxyAuth: 't', destination: 'd', x224ConnectionPdu: x224Request });
  invalidCode(() => rdCleanPathLength(Buffer.from('0300002b', 'hex'))); // raw X.224, no RDCleanPath
  invalidCode(() => rdCleanPathLength(Buffer.from([0x30, 0x83, 0x10, 0x00, 0x00]))); // over MAX_PDU_BYTES
  assert.ok(MAX_PDU_BYTES < 0x100000);
  invalidCode(() => rdCleanPathLength(Buffer.from([0x30, 0x80]))); // indefinite length
  invalidCode(() => decodeRdCleanPath(good.subarray(0, good.length - 1)));
  invalidCode(() => decodeRdCleanPath(Buffer.concat([good, Buffer.from([0])])));
  invalidCode(() => decodeRdCleanPath(encodeRdCleanPath({ version: 3389 })));
  // Fields out of order: [3] before [2].
  const swapped = Buffer.from('3013a00402020d3ea3050c03616263a2040c026161', 'hex');
  invalidCode(() => decodeRdCleanPath(swapped));
  // A destination that is not UTF-8.
  invalidCode(() => decodeRdCleanPath(Buffer.from('300da00402020d3ea2050c03ff6161', 'hex')));
});

test("decodes the request IronRDP's web client (ironrdp-wasm 1.1 in Chromium) really sent", () => {
  // Captured at vmdesk's endpoint; proxy_auth is a ticket of a server long gone.
  const der = fixture('rdcleanpath-request-ironrdp-wasm-1.1.der');
  assert.equal(rdCleanPathLength(der), der.length);
  const pdu = decodeRdCleanPath(der);
  assert.equal(pdu.version, RDCLEANPATH_VERSION);
  assert.equal(pdu.destination, 'win2016:3389');
  assert.equal(pdu.proxyAuth?.length, 43, 'a 256-bit base64url ticket');
  assert.match(pdu.x224ConnectionPdu!.toString('latin1'), /Cookie: mstshash=alice\r\n/);
  assert.deepEqual(encodeRdCleanPath(pdu), der, 'our encoder writes the same DER');
});
