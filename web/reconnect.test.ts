import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, isCurable, parseCloseReason } from './reconnect';

test('backoff doubles from 1 s up to 15 s', () => {
  const b = new Backoff();
  assert.deepEqual([0, 0, 0, 0, 0, 0].map(() => b.next(0)), [1000, 2000, 4000, 8000, 15000, 15000]);
});

test('a connection that lasted over 10 s resets the backoff; a short one does not', () => {
  const b = new Backoff();
  b.next(0);
  b.next(0);
  assert.equal(b.next(5_000), 4000);
  assert.equal(b.next(10_001), 1000);
});

test('close reasons parse as CODE: message', () => {
  assert.deepEqual(parseCloseReason('VM_NOT_RUNNING: win2012 is shut off'), { code: 'VM_NOT_RUNNING', message: 'win2012 is shut off' });
  assert.equal(parseCloseReason('going away'), null);
});

test('chain and VM-state errors are curable, auth and config are not', () => {
  for (const code of ['SSH_HOP_UNREACHABLE', 'SSH_HOP_TIMEOUT', 'SSH_CONNECTION_LOST', 'VM_NOT_RUNNING']) assert.ok(isCurable(code), code);
  for (const code of ['SSH_AUTH_FAILED', 'VM_NOT_FOUND', 'VNC_NOT_CONFIGURED', 'SSH_HOST_KEY_MISMATCH']) assert.ok(!isCurable(code), code);
});
