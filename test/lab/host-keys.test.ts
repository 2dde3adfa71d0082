/**
 * Host keys against real sshd: a changed key stops vmdesk before it offers
 * any credential; an unknown key is refused without a TTY unless the user
 * says --accept-new-host-key, which records it where OpenSSH will read it.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { labDown, labUp, type Lab } from './lab.js';
import { keyOnly } from './accounts.js';
import { EXIT, assertExit, parseJsonError, psJson, stopAll, tunnelWithPort, vmdeskOk } from './cli-contract.js';
import { echoAt, isAccepting } from './probes.js';
import { pollUntil } from './poll.js';

let lab: Lab;
before(async () => {
  lab = await labUp();
}, { timeout: 120_000 });
after(() => labDown(), { timeout: 60_000 });
afterEach(() => stopAll(lab), { timeout: 30_000 });

/** Lines of an sshd log that mean a client tried to authenticate. */
const AUTH_LINE = /^(Accepted|Failed|Postponed|Invalid user|Disconnecting authenticating|Connection closed by authenticating)/m;

/** An ssh_config for the lab whose KVM host entry uses its own known_hosts file. */
function configWithKnownHosts(lab: Lab, hostKnownHosts: string): string {
  const { files } = lab.users.client;
  return [
    'Host jump',
    `  HostName ${lab.addresses.jumpOuter}`,
    '  User labuser',
    `  IdentityFile ${files.identityFile}`,
    `  UserKnownHostsFile ${files.knownHosts}`,
    '',
    'Host kvmhost',
    `  HostName ${lab.addresses.host}`,
    '  User labuser',
    '  ProxyJump jump',
    `  IdentityFile ${files.identityFile}`,
    `  UserKnownHostsFile ${hostKnownHosts}`,
    '',
  ].join('\n');
}

describe('a changed host key', () => {
  // The client's ~/.ssh/known_hosts keeps the old key; tests of unknown keys below use their own files.
  before(() => lab.replaceHostKey('host').then(() => undefined), { timeout: 30_000 });

  test('exits 5 before any authentication, and says how to fix it', { timeout: 60_000 }, async () => {
    const mark = await lab.sshdLogMark('host');
    const r = await lab.vmdesk(['forward', '-d', 'kvmhost', '7400:127.0.0.1:7000']);
    assertExit(r, EXIT.HOST_KEY_CHANGED);
    assert.match(r.stderr, /kvmhost|192\.168\.0\.2/, 'stderr names the host');
    assert.match(r.stderr, /ssh-keygen -R/, 'stderr shows the ssh-keygen -R fix');
    // The connection did reach sshd (so the silence below means something), and ended before userauth.
    const log = await pollUntil(
      async () => {
        const text = await lab.sshdLogSince('host', mark);
        return /Connection from 192\.168\.0\.1 /.test(text) && /(Connection closed|Disconnected|Connection reset|Received disconnect)/.test(text) ? text : undefined;
      },
      { timeoutMs: 5000, what: 'the host sshd to log the rejected connection' },
    );
    assert.doesNotMatch(log, AUTH_LINE, `no credential may be offered to a host with a changed key; log:\n${log}`);
    assert.equal(await isAccepting(lab, 7400), false, 'a failed forward leaves no listener');
    assert.equal(tunnelWithPort(await psJson(lab), 7400), undefined, 'a failed forward leaves no tunnel');
  });

  test('--json: SSH_HOST_KEY_MISMATCH', { timeout: 60_000 }, async () => {
    const r = await lab.vmdesk(['forward', '--json', '-d', 'kvmhost', '7401:127.0.0.1:7000']);
    assertExit(r, EXIT.HOST_KEY_CHANGED);
    assert.equal(parseJsonError(r).error.code, 'SSH_HOST_KEY_MISMATCH');
  });
});

describe('an unknown host key', () => {
  test('exits 4 without a TTY and records nothing', { timeout: 60_000 }, async () => {
    const knownHosts = await lab.writeClientFile('kh-unknown/known_hosts', '', 0o644);
    const config = await lab.writeClientFile('kh-unknown/config', configWithKnownHosts(lab, knownHosts));
    const mark = await lab.sshdLogMark('host');
    const r = await lab.vmdesk(['forward', '-d', '-F', config, 'kvmhost', '7402:127.0.0.1:7000']);
    assertExit(r, EXIT.HOST_KEY_UNKNOWN);
    assert.match(r.stderr, /kvmhost|192\.168\.0\.2/, 'stderr names the host');
    assert.equal(await lab.readClientFile('kh-unknown/known_hosts'), '', 'nothing may be recorded without consent');
    await sleep(300);
    assert.doesNotMatch(await lab.sshdLogSince('host', mark), AUTH_LINE);
  });

  test('--accept-new-host-key records it, and OpenSSH accepts the recorded line', { timeout: 60_000 }, async () => {
    const knownHosts = await lab.writeClientFile('kh-new/known_hosts', '', 0o644);
    const config = await lab.writeClientFile('kh-new/config', configWithKnownHosts(lab, knownHosts));
    await vmdeskOk(lab, ['forward', '-d', '-F', config, '--accept-new-host-key', 'kvmhost', '7403:127.0.0.1:7000']);
    assert.equal(await echoAt(lab, 7403, 'trusted now'), 'trusted now');
    const recorded = await lab.readClientFile('kh-new/known_hosts');
    const blob = keyOnly(lab.hostKeys.host).split(' ')[1] ?? '';
    assert.ok(blob.length > 0 && recorded.includes(blob), `known_hosts must hold the host's key; got:\n${recorded}`);
    const ssh = await lab.ssh(['-F', config, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', 'kvmhost', 'true']);
    assert.equal(ssh.code, 0, `OpenSSH rejects the line vmdesk wrote: ${ssh.stderr}`);
  });
});
