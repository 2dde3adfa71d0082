import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { isConnectionRequest, parseConnectionConfirm, PROTOCOL, TpktReader } from './x224.js';

// Captured from FreeRDP 2.11: xfreerdp's requests, freerdp-shadow-cli /sec:nla's confirms.
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const hybridConfirm = fixture('x224-confirm-freerdp-shadow-hybrid.bin');
const failureConfirm = fixture('x224-confirm-failure-hybrid-required.bin');

test('a confirm split over byte-sized chunks comes out whole, once', () => {
  const reader = new TpktReader();
  for (let i = 0; i < hybridConfirm.length - 1; i++) assert.equal(reader.push(hybridConfirm.subarray(i, i + 1)), undefined);
  const got = reader.push(hybridConfirm.subarray(-1));
  assert.deepEqual(got?.frame, hybridConfirm);
  assert.equal(got?.rest.length, 0);
});

test('bytes after the frame are handed back as rest', () => {
  const got = new TpktReader().push(Buffer.concat([hybridConfirm, Buffer.from([0x16, 0x03])]));
  assert.deepEqual(got?.rest, Buffer.from([0x16, 0x03]));
});

test("freerdp-shadow's confirm selects HYBRID (NLA); its refusal of TLS-only is HYBRID_REQUIRED_BY_SERVER", () => {
  assert.deepEqual(parseConnectionConfirm(hybridConfirm), { kind: 'response', protocol: PROTOCOL.HYBRID });
  assert.deepEqual(parseConnectionConfirm(failureConfirm), { kind: 'failure', failureCode: 5 });
});

test('a confirm without the negotiation structure is legacy', () => {
  assert.deepEqual(parseConnectionConfirm(Buffer.from('0300000b06d00000123400', 'hex')), { kind: 'legacy' });
});

test('what is not a TPKT-framed confirm is RDP_NEGOTIATION_FAILED', () => {
  const bad = (b: Buffer) => assert.throws(() => parseConnectionConfirm(b), (e: unknown) => isVmdeskError(e, 'RDP_NEGOTIATION_FAILED'));
  bad(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'));
  bad(fixture('x224-request-freerdp-nla.bin')); // a request, not a confirm
  bad(hybridConfirm.subarray(0, 12));
  assert.throws(() => new TpktReader().push(Buffer.from('0300ffff', 'hex')), (e: unknown) => isVmdeskError(e, 'RDP_NEGOTIATION_FAILED'));
});

test('connection requests are recognised', () => {
  assert.equal(isConnectionRequest(fixture('x224-request-freerdp-nla.bin')), true);
  assert.equal(isConnectionRequest(fixture('x224-request-freerdp-tls.bin')), true);
  assert.equal(isConnectionRequest(hybridConfirm), false);
  assert.equal(isConnectionRequest(Buffer.from('hello')), false);
});
