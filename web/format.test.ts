import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAge, formatBytes } from './format';

test('bytes in binary units with about three significant digits', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(10 * 1024 * 1024), '10 MiB');
  assert.equal(formatBytes(123.4 * 1024 ** 3), '123 GiB');
  assert.equal(formatBytes(-1), '?');
});

test('ages in s, min, h', () => {
  assert.equal(formatAge(0, 12_000), '12 s');
  assert.equal(formatAge(0, 600_000), '10 min');
  assert.equal(formatAge(0, 3 * 3600_000), '3 h');
});
