import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scancodeOf } from './scancodes.js';

test('basic keys have their set-1 scancode, extended keys carry 0xE0', () => {
  assert.equal(scancodeOf('KeyA'), 0x1e);
  assert.equal(scancodeOf('Enter'), 0x1c);
  assert.equal(scancodeOf('NumpadEnter'), 0xe01c);
  assert.equal(scancodeOf('Delete'), 0xe053);
  assert.equal(scancodeOf('ArrowLeft'), 0xe04b);
  assert.equal(scancodeOf('Fn'), undefined);
});
