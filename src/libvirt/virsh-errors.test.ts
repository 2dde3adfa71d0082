import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { classifyVirshFailure, virshError, virshMessage } from './virsh-errors.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');
const exitCodes = JSON.parse(fixture('errors.json')) as Record<string, { code: number }>;
const failure = (name: string) => ({ exitCode: exitCodes[name]!.code, stderr: fixture(`error-${name}.stderr`) });

describe('classifyVirshFailure on real virsh stderr', () => {
  const cases: [string, string][] = [
    ['domain-not-found', 'VM_NOT_FOUND'],
    ['domain-uuid-not-found', 'VM_NOT_FOUND'],
    ['permission-denied', 'LIBVIRT_PERMISSION_DENIED'],
    ['libvirtd-not-running', 'LIBVIRT_UNAVAILABLE'],
    ['virsh-missing', 'VIRSH_MISSING'],
    ['network-not-found', 'LIBVIRT_COMMAND_FAILED'],
    ['domain-not-running', 'LIBVIRT_COMMAND_FAILED'],
    ['no-guest-agent', 'LIBVIRT_COMMAND_FAILED'],
    ['domifaddr-arp', 'LIBVIRT_COMMAND_FAILED'],
  ];
  for (const [name, code] of cases) {
    it(`${name} -> ${code}`, () => assert.equal(classifyVirshFailure(failure(name)), code));
  }

  it('knows other shells and the polkit wording', () => {
    assert.equal(classifyVirshFailure({ exitCode: 127, stderr: 'bash: line 1: virsh: command not found' }), 'VIRSH_MISSING');
    assert.equal(classifyVirshFailure({ exitCode: 127, stderr: '' }), 'VIRSH_MISSING');
    assert.equal(
      classifyVirshFailure({ exitCode: 1, stderr: "error: failed to connect to the hypervisor\nerror: authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage'\n" }),
      'LIBVIRT_PERMISSION_DENIED',
    );
    assert.equal(classifyVirshFailure({ exitCode: 1, stderr: "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused\n" }), 'LIBVIRT_UNAVAILABLE');
  });
});

describe('virshError', () => {
  it('carries the code, the virsh words, a hint and the context', () => {
    const e = virshError('dumpxml', failure('domain-not-found'), { vm: 'no-such-vm' });
    assert.ok(isVmdeskError(e, 'VM_NOT_FOUND'));
    assert.equal(e.message, "virsh dumpxml failed: failed to get domain 'no-such-vm'");
    assert.equal(e.context.vm, 'no-such-vm');
    assert.ok(e.hint);
    assert.ok(e.cause instanceof Error);
  });

  it('virshMessage drops the error: prefixes', () => {
    assert.equal(virshMessage(fixture('error-permission-denied.stderr')), "failed to connect to the hypervisor; Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied");
  });
});
