/**
 * Authentication failures against real sshd, with no agent and no TTY (so no
 * password prompt): vmdesk exits 6 and names the hop that refused, whether
 * that is the jump host or the KVM host behind it.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { labDown, labUp, type Lab } from './lab.js';
import { EXIT, assertExit, parseJsonError, psJson, stopAll } from './cli-contract.js';
import { isAccepting } from './probes.js';

let lab: Lab;
let wrongKey: string;
before(async () => {
  lab = await labUp();
  wrongKey = `${lab.users.client.home}/.ssh/wrong_ed25519`;
  // A key the servers have never seen, made the way a user makes one.
  const r = await lab.runClient(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
  assert.equal(r.code, 0, r.stderr);
}, { timeout: 120_000 });
after(() => labDown(), { timeout: 60_000 });
afterEach(() => stopAll(lab), { timeout: 30_000 });

/** The lab's two hosts, with `wrongFor` given a key that is not authorized. */
function configWithWrongKey(lab: Lab, wrongFor: 'jump' | 'kvmhost'): string {
  const { files } = lab.users.client;
  const key = (hop: string): string => (hop === wrongFor ? wrongKey : files.identityFile);
  return [
    'Host jump',
    `  HostName ${lab.addresses.jumpOuter}`,
    '  User labuser',
    `  IdentityFile ${key('jump')}`,
    '  IdentitiesOnly yes',
    '',
    'Host kvmhost',
    `  HostName ${lab.addresses.host}`,
    '  User labuser',
    '  ProxyJump jump',
    `  IdentityFile ${key('kvmhost')}`,
    '  IdentitiesOnly yes',
    '',
    'Host *',
    `  UserKnownHostsFile ${files.knownHosts}`,
    '',
  ].join('\n');
}

describe('authentication failures', () => {
  test('a wrong key for the jump host exits 6 and names jump', { timeout: 60_000 }, async () => {
    const config = await lab.writeClientFile('auth/wrong-jump.config', configWithWrongKey(lab, 'jump'));
    const jumpMark = await lab.sshdLogMark('jump');
    const hostMark = await lab.sshdLogMark('host');
    const r = await lab.vmdesk(['forward', '-d', '-F', config, 'kvmhost', '7900:127.0.0.1:7000'], { timeoutMs: 45_000 });
    assertExit(r, EXIT.AUTH_FAILED);
    assert.match(r.stderr, /\bjump\b/, 'stderr names the hop that refused');
    await sleep(300);
    assert.match(await lab.sshdLogSince('jump', jumpMark), /Connection from 10\.1\.1\.233 /);
    assert.doesNotMatch(await lab.sshdLogSince('jump', jumpMark), /^Accepted publickey/m);
    assert.equal(await lab.sshdLogSince('host', hostMark), '', 'the KVM host must not be contacted when the jump refuses');
    assert.equal(await isAccepting(lab, 7900), false);
    assert.deepEqual(await psJson(lab), []);
  });

  test('a wrong key for the KVM host exits 6 and names kvmhost', { timeout: 60_000 }, async () => {
    const config = await lab.writeClientFile('auth/wrong-host.config', configWithWrongKey(lab, 'kvmhost'));
    const jumpMark = await lab.sshdLogMark('jump');
    const hostMark = await lab.sshdLogMark('host');
    const r = await lab.vmdesk(['forward', '-d', '-F', config, 'kvmhost', '7901:127.0.0.1:7000'], { timeoutMs: 45_000 });
    assertExit(r, EXIT.AUTH_FAILED);
    assert.match(r.stderr, /\bkvmhost\b/, 'stderr names the hop that refused');
    await sleep(300);
    assert.match(await lab.sshdLogSince('jump', jumpMark), /Accepted publickey for labuser from 10\.1\.1\.233 /);
    const hostLog = await lab.sshdLogSince('host', hostMark);
    assert.match(hostLog, /Connection from 192\.168\.0\.1 /);
    assert.doesNotMatch(hostLog, /^Accepted publickey/m);
    assert.equal(await isAccepting(lab, 7901), false);
    assert.deepEqual(await psJson(lab), []);
  });

  test('--json: SSH_AUTH_FAILED with the hop in its context', { timeout: 60_000 }, async () => {
    const config = await lab.writeClientFile('auth/wrong-jump.config', configWithWrongKey(lab, 'jump'));
    const r = await lab.vmdesk(['forward', '--json', '-d', '-F', config, 'kvmhost', '7902:127.0.0.1:7000'], { timeoutMs: 45_000 });
    assertExit(r, EXIT.AUTH_FAILED);
    const { error } = parseJsonError(r);
    assert.equal(error.code, 'SSH_AUTH_FAILED');
    assert.match(JSON.stringify(error.context), /\bjump\b/, `context names the hop: ${JSON.stringify(error.context)}`);
  });
});
