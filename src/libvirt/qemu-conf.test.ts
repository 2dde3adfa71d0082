import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseQemuConf } from './qemu-conf.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

describe('parseQemuConf on real files', () => {
  it("upstream's default (what Debian installs): every setting commented out, so nothing is set", () => {
    assert.deepEqual(parseQemuConf(fixture('qemu.conf-upstream-default-excerpt')), {});
  });

  it('the lab hypervisor: vnc_listen and spice_listen on loopback, lists and other keys skipped', () => {
    assert.deepEqual(parseQemuConf(fixture('qemu.conf-lab')), { vncListen: '127.0.0.1', spiceListen: '127.0.0.1' });
  });

  it("libvirt 9.0's augeas test file: every key set, multi-line lists included", () => {
    assert.deepEqual(parseQemuConf(fixture('qemu.conf-libvirt9-all-keys')), {
      vncListen: '0.0.0.0',
      vncTls: true,
      vncPasswordSet: true,
      vncAutoUnixSocket: true,
      vncSasl: true,
      spiceListen: '0.0.0.0',
      spiceTls: true,
      spicePasswordSet: true,
      spiceAutoUnixSocket: true,
    });
  });
});

describe('parseQemuConf on crafted lines', () => {
  it('quote styles, trailing comments, ; separators, blanks', () => {
    assert.deepEqual(parseQemuConf(`vnc_listen = '::' # all of them\n\tvnc_tls=0;spice_tls = 1\n\n`), { vncListen: '::', vncTls: false, spiceTls: true });
    assert.deepEqual(parseQemuConf(`spice_listen = """192.0.2.1"""\n`), { spiceListen: '192.0.2.1' });
  });

  it('the first statement of a name wins, as in virConfGetValue', () => {
    assert.deepEqual(parseQemuConf('vnc_listen = "127.0.0.1"\nvnc_listen = "0.0.0.0"\n'), { vncListen: '127.0.0.1' });
  });

  it('booleans are 0 or 1 only; a string where a boolean belongs counts as unset', () => {
    assert.deepEqual(parseQemuConf('vnc_tls = 2\nspice_tls = "1"\nvnc_listen = 0\n'), {});
  });

  it('an empty vnc_password still sets a password (QEMU then refuses every client)', () => {
    assert.deepEqual(parseQemuConf('vnc_password = ""\n'), { vncPasswordSet: true });
  });

  it('a commented-out setting and a # inside a string', () => {
    assert.deepEqual(parseQemuConf('#vnc_listen = "0.0.0.0"\n  # vnc_tls = 1\nvnc_sasl_dir = "/a#b"\n'), {});
  });

  it('a list over several lines with comments, then more settings', () => {
    assert.deepEqual(parseQemuConf('cgroup_device_acl = [\n  "/dev/null", # first\n\n  "/dev/kvm",\n]\nvnc_tls = 1\n'), { vncTls: true });
  });

  it('a syntax error stops the parse, keeps what came before and says where', () => {
    assert.deepEqual(parseQemuConf('vnc_listen = "0.0.0.0"\nvnc_tls = yes\nspice_tls = 1\n'), { vncListen: '0.0.0.0', syntaxError: 'line 2: expecting a value' });
    assert.equal(parseQemuConf('vnc_listen = "0.0.0.0\n').syntaxError, 'line 1: unterminated string');
  });
});
