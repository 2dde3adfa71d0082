import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isQemuArgv0, parseQemuArgv, parseQemuProcesses, parseSpiceOption, parseVncOption, QEMU_PROCESS_SCRIPT, splitQemuOpts } from './qemu-processes.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

/** One record of QEMU_PROCESS_SCRIPT's output for an argv, in `od -An -v -tx1` layout. */
function record(pid: number, user: string, argv: string[]): string {
  const hex = [...Buffer.from(`${argv.join('\0')}\0`)].map((b) => ` ${b.toString(16).padStart(2, '0')}`);
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 16) lines.push(hex.slice(i, i + 16).join(''));
  return `P ${pid} 0 ${user}\n${lines.join('\n')}\n`;
}

describe('parseQemuProcesses on the lab (libvirt 9.0, QEMU 7.2), captured with dash; busybox ash gave the same bytes', () => {
  const ps = parseQemuProcesses(fixture('qemu-processes-lab.txt'));
  const byPid = new Map(ps.map((p) => [p.pid, p]));

  it('finds the six libvirt-started QEMUs and the two started by hand', () => {
    assert.deepEqual(
      ps.map((p) => [p.pid, p.name ?? null]),
      [
        [7661, 'win2016'],
        [7690, 'win2019'],
        [7702, 'rhel8'],
        [7712, 'debian12'],
        [7756, `x'; touch pwned; echo '`],
        [7778, '$(touch pwned2)'],
        [7795, null],
        [7796, 'hand,made'],
      ],
    );
    assert.ok(ps.every((p) => p.user === 'root' && ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86_64'].includes(p.argv[0]!)));
  });

  it("libvirt's forms: -vnc 127.0.0.1:101,audiodev=..., password=on, vnc=unix:..., -uuid", () => {
    const win2016 = byPid.get(7661)!;
    assert.equal(win2016.uuid, '766d6400-6c61-4b00-8000-000000002016');
    assert.deepEqual(win2016.vnc, { listen: '127.0.0.1', port: 6001, hasPassword: false, hasTls: false, hasSasl: false, isReverse: false });
    assert.equal(byPid.get(7690)!.vnc!.listen, '0.0.0.0');
    assert.equal(byPid.get(7702)!.vnc!.hasPassword, true);
    assert.equal(byPid.get(7712)!.vnc!.listen, 'unix:/run/vmd-libvirt/vnc/766d6400-6c61-4b00-8000-000000000012.sock');
    assert.equal(byPid.get(7712)!.vnc!.port, undefined);
    assert.equal(byPid.get(7756)!.vnc!.listen, `unix:/var/lib/libvirt/qemu/domain-11-x'; touch pwned; ech/vnc.sock`);
    assert.deepEqual(byPid.get(7778)!.vnc, { listen: '192.168.122.1', port: 6004, hasPassword: false, hasTls: false, hasSasl: false, isReverse: false });
  });

  it('hand-started: -vnc 0.0.0.0:7, and [::]:8 with websocket and password plus -spice without ticketing', () => {
    const a = byPid.get(7795)!;
    assert.deepEqual(a.argv, ['qemu-system-x86_64', '-S', '-m', '64', '-nodefaults', '-display', 'none', '-vnc', '0.0.0.0:7']);
    assert.equal(a.uuid, undefined);
    assert.deepEqual(a.vnc, { listen: '0.0.0.0', port: 5907, hasPassword: false, hasTls: false, hasSasl: false, isReverse: false });
    const b = byPid.get(7796)!;
    assert.equal(b.uuid, '0b7a4c1e-5a1d-4c3e-9f00-00000000beef');
    assert.deepEqual(b.vnc, { listen: '::', port: 5908, hasPassword: true, hasTls: false, hasSasl: false, isReverse: false, websocket: { listen: '::', port: 5708 } });
    assert.deepEqual(b.spice, { listen: '0.0.0.0', port: 5931, hasPassword: false });
  });
});

describe('parseQemuProcesses framing', () => {
  it('an argument holding a fake record or newlines cannot forge a process', () => {
    const evil = 'x\nP 1 0 root\n 71 65 6d 75\nE\n';
    const out = parseQemuProcesses(record(42, 'alice', ['/usr/libexec/qemu-kvm', '-name', evil, '-vnc', ':1']) + 'E\n');
    assert.equal(out.length, 1);
    assert.equal(out[0]!.name, evil);
    assert.equal(out[0]!.user, 'alice');
    assert.deepEqual(out[0]!.vnc?.listen, '0.0.0.0');
  });

  it('drops a process that exited between its header and its cmdline, and non-QEMU argv0', () => {
    const text = `P 10 0 root\n${record(11, 'root', ['/bin/sleep', '9'])}${record(12, '1000', ['qemu-system-aarch64', '-vnc', 'none'])}E\n`;
    const out = parseQemuProcesses(text);
    assert.deepEqual(
      out.map((p) => [p.pid, p.user, p.vnc]),
      [[12, '1000', undefined]],
    );
  });

  it('isQemuArgv0', () => {
    assert.equal(isQemuArgv0('/usr/bin/qemu-system-x86_64'), true);
    assert.equal(isQemuArgv0('qemu-kvm'), true);
    assert.equal(isQemuArgv0('/usr/bin/qemu-img'), false);
    assert.equal(isQemuArgv0('/opt/qemu-kvm-wrapper'), false);
  });
});

describe('QEMU option syntax', () => {
  it('splitQemuOpts: ,, is a comma, the first bare element is the implied key, bare flags are on', () => {
    assert.deepEqual(splitQemuOpts('guest=a,,b,debug-threads=on', 'guest'), [
      ['guest', 'a,b'],
      ['debug-threads', 'on'],
    ]);
    assert.deepEqual(splitQemuOpts('vm1', 'guest'), [['guest', 'vm1']]);
    assert.deepEqual(splitQemuOpts(':1,password,noreverse', 'vnc'), [
      ['vnc', ':1'],
      ['password', 'on'],
      ['reverse', 'off'],
    ]);
  });

  it('parseVncOption: every display form', () => {
    const base = { hasPassword: false, hasTls: false, hasSasl: false, isReverse: false };
    assert.deepEqual(parseVncOption(':1'), { ...base, listen: '0.0.0.0', port: 5901 });
    assert.deepEqual(parseVncOption('[::]:3'), { ...base, listen: '::', port: 5903 });
    assert.deepEqual(parseVncOption('[::1]:3'), { ...base, listen: '::1', port: 5903 });
    assert.deepEqual(parseVncOption('localhost:0,to=5'), { ...base, listen: 'localhost', port: 5900 });
    assert.deepEqual(parseVncOption('vnc=0.0.0.0:7,password-secret=sec0,tls-creds=tls0'), { ...base, listen: '0.0.0.0', port: 5907, hasPassword: true, hasTls: true });
    assert.deepEqual(parseVncOption('unix:/tmp/a,,b.sock'), { ...base, listen: 'unix:/tmp/a,b.sock' });
    assert.deepEqual(parseVncOption('0.0.0.0:1,password,tls,x509=/etc/pki'), { ...base, listen: '0.0.0.0', port: 5901, hasPassword: true, hasTls: true });
    assert.deepEqual(parseVncOption('192.0.2.9:5500,reverse=on'), { ...base, listen: '192.0.2.9', port: 5500, isReverse: true });
    assert.deepEqual(parseVncOption('127.0.0.1:2,websocket=0.0.0.0:5702'), { ...base, listen: '127.0.0.1', port: 5902, websocket: { listen: '0.0.0.0', port: 5702 } });
    assert.deepEqual(parseVncOption('127.0.0.1:2,websocket=6080'), { ...base, listen: '127.0.0.1', port: 5902, websocket: { listen: '127.0.0.1', port: 6080 } });
    assert.deepEqual(parseVncOption('0.0.0.0:1,sasl=on'), { ...base, listen: '0.0.0.0', port: 5901, hasSasl: true });
    assert.equal(parseVncOption('none'), undefined);
    assert.equal(parseVncOption('none,websocket=on'), undefined);
  });

  it('parseSpiceOption: libvirt form, TLS port, unix socket, password, default address', () => {
    assert.deepEqual(parseSpiceOption('port=5930,addr=127.0.0.1,disable-ticketing=on,seamless-migration=on'), { listen: '127.0.0.1', port: 5930, hasPassword: false });
    assert.deepEqual(parseSpiceOption('port=5930,tls-port=5931,password-secret=s0'), { listen: '0.0.0.0', port: 5930, tlsPort: 5931, hasPassword: true });
    assert.deepEqual(parseSpiceOption('unix=on,addr=/run/spice.sock,disable-ticketing=on'), { listen: 'unix:/run/spice.sock', hasPassword: false });
    assert.deepEqual(parseSpiceOption('port=5930,addr=[::],password=x'), { listen: '::', port: 5930, hasPassword: true });
    assert.deepEqual(parseSpiceOption('gl=on'), { hasPassword: false });
  });

  it('parseQemuArgv: -name NAME, --vnc, -display vnc=..., the first -vnc counts', () => {
    const r = parseQemuArgv(['qemu-system-x86_64', '-name', 'plain', '--vnc', '0.0.0.0:4', '-vnc', '127.0.0.1:5', '-uuid', 'ABCDEF00-0000-0000-0000-000000000001']);
    assert.equal(r.name, 'plain');
    assert.equal(r.vnc?.port, 5904);
    assert.equal(r.uuid, 'abcdef00-0000-0000-0000-000000000001');
    assert.equal(parseQemuArgv(['qemu-kvm', '-display', 'vnc=:9,password=on']).vnc?.port, 5909);
    assert.equal(parseQemuArgv(['qemu-kvm', '-nographic', '-vnc']).vnc, undefined);
  });
});

describe('QEMU_PROCESS_SCRIPT runs under the shells it promises', () => {
  for (const shell of ['/bin/sh', '/usr/bin/dash', '/usr/bin/busybox']) {
    it(`${shell}: exits 0, ends with E, and parses`, { skip: !existsSync(shell) || !existsSync('/proc/self/cmdline') }, () => {
      const argv = shell.endsWith('busybox') ? ['sh', '-c', QEMU_PROCESS_SCRIPT] : ['-c', QEMU_PROCESS_SCRIPT];
      const out = execFileSync(shell, argv, { encoding: 'utf8' });
      assert.match(out, /(^|\n)E\n$/);
      for (const p of parseQemuProcesses(out)) assert.ok(isQemuArgv0(p.argv[0]!));
    });
  }
});
