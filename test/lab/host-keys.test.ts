/**
 * Host keys against real sshd: a changed key stops vmdesk before it offers
 * any credential; an unknown key is refused without a TTY unless the user
 * says --accept-new-host-key, which records it where OpenSSH will read it.
 * ssh_config's RevokedHostKeys (a key list or a KRL from ssh-keygen -k) stops
 * the chain at the revoked hop as plain ssh does, and several
 * UserKnownHostsFile entries are all consulted.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
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

/**
 * An ssh_config for the whole chain with the given known_hosts list (as written in ssh_config, so
 * `~` and %-tokens go through `ssh -G`) and, for every host, the given RevokedHostKeys file.
 */
function chainConfig(lab: Lab, opts: { userKnownHosts: string; revoked?: string }): string {
  const { files } = lab.users.client;
  return [
    'Host jump',
    `  HostName ${lab.addresses.jumpOuter}`,
    'Host kvmhost',
    `  HostName ${lab.addresses.host}`,
    '  ProxyJump jump',
    'Host *',
    '  User labuser',
    `  IdentityFile ${files.identityFile}`,
    `  UserKnownHostsFile ${opts.userKnownHosts}`,
    '  StrictHostKeyChecking yes',
    ...(opts.revoked ? [`  RevokedHostKeys ${opts.revoked}`] : []),
    '',
  ].join('\n');
}

/** Both hops' current keys, as known_hosts lines (the host's key may have been replaced by another test). */
function currentKnownHosts(lab: Lab): string {
  return `${lab.addresses.jumpOuter} ${keyOnly(lab.hostKeys.jump)}\n${lab.addresses.host} ${keyOnly(lab.hostKeys.host)}\n`;
}

/** Waits for the jump's sshd to log a connection from the client that ended, and returns that log. */
async function jumpLogOfRefusedConnection(mark: number): Promise<string> {
  return pollUntil(
    async () => {
      const text = await lab.sshdLogSince('jump', mark);
      return new RegExp(`Connection from ${lab.addresses.client.replaceAll('.', '\\.')} `).test(text) && /(Connection closed|Disconnected|Connection reset|Received disconnect)/.test(text) ? text : undefined;
    },
    { timeoutMs: 5000, what: 'the jump sshd to log the refused connection' },
  );
}

describe('RevokedHostKeys', () => {
  test('the jump host key listed in a key file: exit 26 naming the jump hop, before any authentication; ssh refuses too', { timeout: 60_000 }, async () => {
    const knownHosts = await lab.writeClientFile('revoked-list/known_hosts', currentKnownHosts(lab), 0o644);
    const revoked = await lab.writeClientFile('revoked-list/revoked_keys', `# retired jump key\n${lab.hostKeys.jump.trim()}\n`, 0o644);
    const config = await lab.writeClientFile('revoked-list/config', chainConfig(lab, { userKnownHosts: knownHosts, revoked }));

    const ssh = await lab.ssh(['-F', config, '-o', 'BatchMode=yes', 'kvmhost', 'true']);
    assert.equal(ssh.code, 255, `plain ssh must refuse the revoked jump key: ${ssh.stderr}`);
    assert.match(ssh.stderr, /revoked by file/);

    const mark = await lab.sshdLogMark('jump');
    const r = await lab.vmdesk(['forward', '--json', '-d', '-F', config, 'kvmhost', '7410:127.0.0.1:7000']);
    assertExit(r, EXIT.HOST_KEY_REVOKED);
    const { error } = parseJsonError(r);
    assert.equal(error.code, 'SSH_HOST_KEY_REVOKED');
    assert.equal(error.context?.['hop'], 'jump', `the refused hop is the jump; got ${JSON.stringify(error)}`);
    assert.equal(error.context?.['hopIndex'], 0);
    assert.equal(error.context?.['file'], revoked);
    const log = await jumpLogOfRefusedConnection(mark);
    assert.doesNotMatch(log, AUTH_LINE, `no credential may be offered to a revoked host; log:\n${log}`);
    assert.equal(await isAccepting(lab, 7410), false, 'a refused forward leaves no listener');
  });

  test('a KRL made by ssh-keygen -k revokes the jump key as well', { timeout: 60_000 }, async () => {
    const knownHosts = await lab.writeClientFile('revoked-krl/known_hosts', currentKnownHosts(lab), 0o644);
    const pub = await lab.writeClientFile('revoked-krl/jump.pub', `${lab.hostKeys.jump.trim()}\n`, 0o644);
    const krl = `${dirname(pub)}/revoked.krl`;
    const made = await lab.runClient(['ssh-keygen', '-q', '-k', '-f', krl, pub]);
    assert.equal(made.code, 0, `ssh-keygen -k: ${made.stderr}`);
    const config = await lab.writeClientFile('revoked-krl/config', chainConfig(lab, { userKnownHosts: knownHosts, revoked: krl }));

    const ssh = await lab.ssh(['-F', config, '-o', 'BatchMode=yes', 'kvmhost', 'true']);
    assert.equal(ssh.code, 255, `plain ssh must refuse the key revoked by the KRL: ${ssh.stderr}`);
    assert.match(ssh.stderr, /revoked by file/);

    const mark = await lab.sshdLogMark('jump');
    const r = await lab.vmdesk(['forward', '--json', '-d', '-F', config, 'kvmhost', '7411:127.0.0.1:7000']);
    assertExit(r, EXIT.HOST_KEY_REVOKED);
    const { error } = parseJsonError(r);
    assert.equal(error.code, 'SSH_HOST_KEY_REVOKED');
    assert.equal(error.context?.['hop'], 'jump');
    assert.doesNotMatch(await jumpLogOfRefusedConnection(mark), AUTH_LINE);
  });

  test('a KRL that revokes other keys only: the chain connects, as with ssh', { timeout: 60_000 }, async () => {
    const knownHosts = await lab.writeClientFile('revoked-krl-other/known_hosts', currentKnownHosts(lab), 0o644);
    const pub = await lab.writeClientFile('revoked-krl-other/other.pub', `${lab.users.client.publicKey.trim()}\n`, 0o644);
    const krl = `${dirname(pub)}/revoked.krl`;
    assert.equal((await lab.runClient(['ssh-keygen', '-q', '-k', '-f', krl, pub])).code, 0);
    const config = await lab.writeClientFile('revoked-krl-other/config', chainConfig(lab, { userKnownHosts: knownHosts, revoked: krl }));
    const ssh = await lab.ssh(['-F', config, '-o', 'BatchMode=yes', 'kvmhost', 'true']);
    assert.equal(ssh.code, 0, `plain ssh connects: ${ssh.stderr}`);
    await vmdeskOk(lab, ['forward', '-d', '-F', config, 'kvmhost', '7412:127.0.0.1:7000']);
    assert.equal(await echoAt(lab, 7412, 'not revoked'), 'not revoked');
  });

  test('a missing RevokedHostKeys file refuses every host, as ssh does', { timeout: 60_000 }, async () => {
    const knownHosts = await lab.writeClientFile('revoked-missing/known_hosts', currentKnownHosts(lab), 0o644);
    const config = await lab.writeClientFile('revoked-missing/config', chainConfig(lab, { userKnownHosts: knownHosts, revoked: `${dirname(knownHosts)}/no-such-file` }));
    const ssh = await lab.ssh(['-F', config, '-o', 'BatchMode=yes', 'kvmhost', 'true']);
    assert.equal(ssh.code, 255, `plain ssh refuses: ${ssh.stderr}`);
    const r = await lab.vmdesk(['forward', '--json', '-d', '-F', config, 'kvmhost', '7413:127.0.0.1:7000']);
    assertExit(r, EXIT.HOST_KEY_REVOKED);
    assert.equal(parseJsonError(r).error.code, 'SSH_REVOKED_KEYS_UNREADABLE');
  });
});

describe('several UserKnownHostsFile entries', () => {
  test('keys found in the second file (~ and %h as ssh -G expands them) connect; the first stays untouched', { timeout: 60_000 }, async () => {
    await lab.writeClientFile('kh-multi/first', '', 0o644);
    // One second file per host: %h is the jump's address for the jump, the host's for kvmhost.
    await lab.writeClientFile(`kh-multi/second-${lab.addresses.jumpOuter}`, `${lab.addresses.jumpOuter} ${keyOnly(lab.hostKeys.jump)}\n`, 0o644);
    await lab.writeClientFile(`kh-multi/second-${lab.addresses.host}`, `${lab.addresses.host} ${keyOnly(lab.hostKeys.host)}\n`, 0o644);
    const config = await lab.writeClientFile('kh-multi/config', chainConfig(lab, { userKnownHosts: '~/kh-multi/first ~/kh-multi/second-%h' }));
    const ssh = await lab.ssh(['-F', config, '-o', 'BatchMode=yes', 'kvmhost', 'true']);
    assert.equal(ssh.code, 0, `plain ssh connects with the same files: ${ssh.stderr}`);
    await vmdeskOk(lab, ['forward', '-d', '-F', config, 'kvmhost', '7414:127.0.0.1:7000']);
    assert.equal(await echoAt(lab, 7414, 'second file'), 'second file');
    assert.equal(await lab.readClientFile('kh-multi/first'), '', 'nothing is recorded when every key is known');
  });
});

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
