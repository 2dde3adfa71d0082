import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmdeskError } from '../errors.js';
import { commandLine } from '../libvirt/shell-quote.js';
import { REMOTE_SHELL_COMMAND, decodeRemoteScript, encodeRemoteScript } from './remote-script.js';

/** VM names built to break out of POSIX quoting under fish (`\'`), tcsh (`!` history) and POSIX shells. */
const HOSTILE = [
  `x\\'; touch pwned #`,
  `x\\\\'; touch pwned2 #`,
  `t!#:s^qemu^x;touch pwned3;^`,
  'h!ls',
  '$(touch pwned4)',
  '`touch pwned5`',
  `x'; touch pwned6; echo '`,
  'a; touch pwned7 #',
  "'\\''",
  '\\',
  '-rf',
  '{ } } </dev/null',
];

const ALL_BYTES = Buffer.from(Array.from({ length: 255 }, (_, i) => i + 1));

describe('encodeRemoteScript / decodeRemoteScript', () => {
  it('round-trips scripts and their standard input, byte for byte', () => {
    const scripts = ['virsh list', commandLine(['printf', '%s', ...HOSTILE]), 'a\n}\n} </dev/null\n', "{ printf '%s' 'x' 2>/dev/null | {\n", 'ünïcode ✓'];
    const inputs: (string | Buffer | undefined)[] = [undefined, '', "'", "'\\''", '\n}\n} </dev/null\n', "' 2>/dev/null | {\n", '<domain/>\n', ALL_BYTES];
    for (const script of scripts) {
      for (const stdin of inputs) {
        const back = decodeRemoteScript(encodeRemoteScript(script, stdin));
        const want = stdin === undefined ? { script } : { script, stdin: typeof stdin === 'string' ? Buffer.from(stdin) : stdin };
        assert.deepEqual(back, want, JSON.stringify([script, stdin]));
      }
    }
  });

  it('refuses a NUL byte in the script or its input (no shell string can hold one)', () => {
    const internal = (e: unknown) => isVmdeskError(e, 'INTERNAL');
    assert.throws(() => encodeRemoteScript('echo a\0b'), internal);
    assert.throws(() => encodeRemoteScript('cat', Buffer.from([0x41, 0, 0x42])), internal);
  });

  it('decodes nothing that encodeRemoteScript did not frame', () => {
    const whole = encodeRemoteScript('cat', "it's");
    for (const bad of [
      Buffer.from('virsh list'),
      Buffer.from('{\n} </dev/null'),
      whole.subarray(0, whole.length - 1),
      whole.subarray(0, 20),
      Buffer.from("{ printf '%s' 'a'b' 2>/dev/null | {\ncat\n}\n} </dev/null\n"),
      Buffer.from('{\necho \0\n} </dev/null\n'),
    ]) {
      assert.equal(decodeRemoteScript(bad), undefined, JSON.stringify(bad.toString('latin1')));
    }
  });

  it('sends no byte of the script in the exec string', () => {
    assert.equal(REMOTE_SHELL_COMMAND, '/bin/sh -s');
  });
});

/** Login shells as sshd runs them: `SHELL -c EXEC_STRING`, the channel on stdin. */
const LOGIN_SHELLS = ['/bin/sh', '/bin/bash', '/usr/bin/dash', '/usr/bin/fish', '/usr/bin/tcsh', '/usr/bin/zsh'].filter((s) => existsSync(s));

describe('the fixed exec under real login shells', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmdesk-remote-script-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** What sshd would hand back for `script` sent the way SshChain.exec sends it, to a user whose login shell is `shell`. */
  function runAs(shell: string, script: string, stdin?: string | Buffer): { code: number | null; stdout: Buffer; stderr: Buffer } {
    const r = spawnSync(shell, ['-c', REMOTE_SHELL_COMMAND], { cwd: dir, input: encodeRemoteScript(script, stdin), env: { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8' } });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  for (const shell of LOGIN_SHELLS) {
    it(`${shell}: hostile names arrive as one word each and run nothing`, () => {
      const r = runAs(shell, commandLine(['printf', '%s\\n', ...HOSTILE]));
      assert.equal(r.stderr.toString(), '');
      assert.equal(r.code, 0);
      assert.equal(r.stdout.toString(), HOSTILE.map((n) => `${n}\n`).join(''));
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('pwned')), []);
    });

    it(`${shell}: exit status, stdout and stderr are exactly the script's`, () => {
      assert.deepEqual(runAs(shell, "printf 'out'; printf 'err' >&2; exit 3"), { code: 3, stdout: Buffer.from('out'), stderr: Buffer.from('err') });
      assert.deepEqual(runAs(shell, 'false'), { code: 1, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) });
    });

    it(`${shell}: a command that reads stdin gets /dev/null, not the rest of the script`, () => {
      // Longer than /bin/sh's read buffer, so an unguarded `cat` would get the rest of the script.
      const r = runAs(shell, `cat\n${'#'.repeat(20_000)}\nread -r line; echo "read:$line"\necho after`);
      assert.deepEqual([r.code, r.stdout.toString(), r.stderr.toString()], [0, 'read:\nafter\n', '']);
    });

    it(`${shell}: the script's standard input is the data given, every byte`, () => {
      assert.deepEqual(runAs(shell, 'cat', ALL_BYTES).stdout, ALL_BYTES);
      const xml = "<domain><name>x\\'; touch pwned #</name><description>'\\''</description></domain>\n";
      assert.equal(runAs(shell, 'cat; echo end', xml).stdout.toString(), `${xml}end\n`);
      const early = runAs(shell, 'head -c 1; exit 4', Buffer.alloc(1 << 20, 0x61));
      assert.deepEqual([early.code, early.stdout.toString(), early.stderr.toString()], [4, 'a', '']);
    });
  }

  it('a script cut short runs none of it', () => {
    const marker = join(dir, 'ran');
    const whole = encodeRemoteScript(`${commandLine(['touch', marker])}\necho done`);
    const r = spawnSync('/bin/sh', ['-c', REMOTE_SHELL_COMMAND], { input: whole.subarray(0, whole.length - 4) });
    assert.notEqual(r.status, 0);
    assert.equal(existsSync(marker), false);
  });
});
