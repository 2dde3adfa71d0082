import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, configPath, DEFAULT_LIBVIRT_URI } from './config.js';
import { isVmdeskError } from '../errors.js';

function errorOf(text: string): { code: string; context: Record<string, unknown> } {
  try {
    parseConfig(text, 'c.yaml');
  } catch (err) {
    assert.ok(isVmdeskError(err));
    return err;
  }
  assert.fail('expected an error');
}

describe('parseConfig', () => {
  it('reads hosts in both short and long forms, with defaults applied', () => {
    const c = parseConfig('defaults:\n  libvirtUri: qemu+ssh:///x\nhosts:\n  lab: kvmhost\n  far:\n    ssh: root@10.0.0.2:2222\n    jump: jump\n    libvirtUri: qemu:///session\n', 'c.yaml');
    assert.deepEqual(c.hosts, [
      { name: 'lab', ssh: 'kvmhost', libvirtUri: 'qemu+ssh:///x' },
      { name: 'far', ssh: 'root@10.0.0.2:2222', jump: 'jump', libvirtUri: 'qemu:///session' },
    ]);
  });

  it('accepts an empty file', () => {
    assert.deepEqual(parseConfig('', 'c.yaml').hosts, []);
    assert.equal(parseConfig('# nothing\n', 'c.yaml').defaults.libvirtUri, DEFAULT_LIBVIRT_URI);
  });

  it('names the line and key of an unknown key', () => {
    const e = errorOf('hosts:\n  lab:\n    ssh: kvmhost\n    jmup: jump\n');
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.equal(e.context.line, 4);
    assert.equal(e.context.key, 'hosts.lab.jmup');
  });

  it('requires ssh for a host and a string value', () => {
    assert.equal(errorOf('hosts:\n  lab:\n    jump: j\n').context.key, 'hosts.lab.ssh');
    assert.equal(errorOf('hosts:\n  lab:\n    ssh: [a, b]\n').context.line, 3);
  });

  it('rejects YAML syntax errors and duplicate keys with a line', () => {
    assert.equal(errorOf('hosts:\n  lab: a\n  lab: b\n').code, 'CONFIG_INVALID');
    assert.equal(errorOf('hosts: [\n').code, 'CONFIG_INVALID');
  });

  it('rejects host names that cannot be written as HOST/VM', () => {
    assert.equal(errorOf('hosts:\n  "a/b": x\n').context.key, 'hosts.a/b');
  });

  it('finds the file XDG-style', () => {
    assert.equal(configPath(undefined, { XDG_CONFIG_HOME: '/x', HOME: '/h' }), '/x/vmdesk/config.yaml');
    assert.equal(configPath(undefined, { HOME: '/h' }), '/h/.config/vmdesk/config.yaml');
    assert.equal(configPath(undefined, { VMDESK_CONFIG: '/v.yaml', HOME: '/h' }), '/v.yaml');
    assert.equal(configPath('/e.yaml', { VMDESK_CONFIG: '/v.yaml' }), '/e.yaml');
  });
});
