import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMBOS, KEY, comboEvents, functionKey, keysymForChar, keysymsForText } from './keysyms';

test('Latin-1 characters are their own keysym, others are Unicode keysyms', () => {
  assert.equal(keysymForChar('a'.codePointAt(0)!), 0x61);
  assert.equal(keysymForChar('~'.codePointAt(0)!), 0x7e);
  assert.equal(keysymForChar('é'.codePointAt(0)!), 0xe9);
  assert.equal(keysymForChar('€'.codePointAt(0)!), 0x010020ac);
  assert.equal(keysymForChar('😀'.codePointAt(0)!), 0x0101f600);
  assert.equal(keysymForChar(0x07), null);
  assert.equal(keysymForChar(0x7f), null);
});

test('newline and tab become Return and Tab; CRLF is one Return', () => {
  assert.deepEqual(keysymsForText('a\r\nb\rc\td'), [0x61, 0xff0d, 0x62, 0xff0d, 0x63, 0xff09, 0x64]);
});

test('astral characters are one keysym, not two surrogates', () => {
  assert.deepEqual(keysymsForText('😀'), [0x0101f600]);
});

test('combos press in order and release in reverse', () => {
  const events = comboEvents([KEY.ctrl, KEY.alt, functionKey(2)]);
  assert.deepEqual(
    events.map((e) => [e.keysym, e.down]),
    [[0xffe3, true], [0xffe9, true], [0xffbf, true], [0xffbf, false], [0xffe9, false], [0xffe3, false]],
  );
  assert.equal(functionKey(7).keysym, 0xffc4);
  assert.ok(COMBOS.some((c) => c.label === 'Ctrl-Alt-F7'));
});
