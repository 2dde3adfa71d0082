import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { commandLine, quoteArg } from './shell-quote.js';

/** Runs `sh -c LINE` where LINE prints each argument NUL-terminated, and returns the arguments sh saw. */
function argvThroughSh(words: readonly string[]): string[] {
  const line = `printf '%s\\0' ${words.map(quoteArg).join(' ')}`;
  const r = spawnSync('/bin/sh', ['-c', line], { encoding: 'buffer' });
  assert.equal(r.status, 0, r.stderr.toString());
  const parts = r.stdout.toString('utf8').split('\0');
  assert.equal(parts.pop(), '');
  return parts;
}

const HOSTILE = [
  `x'; touch pwned; echo '`,
  '$(touch pwned2)',
  '`touch pwned3`',
  '-rf',
  '--domain',
  'a b\tc',
  'line1\nline2\n',
  '\n',
  "'",
  "''",
  '\\',
  '\\\'',
  '"$HOME"',
  '${IFS}',
  '*',
  '~',
  '!!',
  '#comment',
  'a;b|c&d>e<f',
  'Ω 测试 🙂',
  ' leading and trailing ',
];

describe('quoteArg', () => {
  it('single-quotes every word, empty included', () => {
    assert.equal(quoteArg(''), `''`);
    assert.equal(quoteArg('win2016'), `'win2016'`);
    assert.equal(quoteArg('a b'), `'a b'`);
  });

  it("writes ' as '\\'' (close, escaped quote, reopen)", () => {
    assert.equal(quoteArg("it's"), `'it'\\''s'`);
    assert.equal(quoteArg(`x'; touch pwned; echo '`), `'x'\\''; touch pwned; echo '\\'''`);
  });

  it('refuses NUL, which no argv can carry', () => {
    assert.throws(() => quoteArg('a\0b'), TypeError);
  });

  it('survives a real /bin/sh exactly, hostile names and newlines included', () => {
    assert.deepEqual(argvThroughSh(HOSTILE), HOSTILE);
    assert.deepEqual(argvThroughSh(['']), ['']);
  });
});

describe('commandLine', () => {
  it('quotes each word and joins with spaces', () => {
    assert.equal(commandLine(['virsh', '-c', 'qemu:///system', 'dumpxml', '--domain', '$(touch pwned2)']), `'virsh' '-c' 'qemu:///system' 'dumpxml' '--domain' '$(touch pwned2)'`);
  });

  it('round-trips through sh -c as one argv', () => {
    const argv = ['printf', '%s\\0', ...HOSTILE];
    const r = spawnSync('/bin/sh', ['-c', commandLine(argv)], { encoding: 'buffer' });
    assert.equal(r.status, 0);
    const parts = r.stdout.toString('utf8').split('\0');
    parts.pop();
    assert.deepEqual(parts, HOSTILE);
  });

  it('refuses an empty argv', () => {
    assert.throws(() => commandLine([]), TypeError);
  });
});
