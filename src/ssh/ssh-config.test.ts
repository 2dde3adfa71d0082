import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isVmdeskError, type ErrorCode } from '../errors.js';
import { currentLocalIdentity, expandPercentTokens, parseDestination, parseSshGOutput, resolveHost, type LocalIdentity } from './ssh-config.js';
import { NO_SSH } from '../../test/openssh-client.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/ssh-config/', import.meta.url));
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

/** The identity the fixtures were captured as (root on host "vm"). */
const CAPTURED_AS: LocalIdentity = { userName: 'root', homeDir: '/root', uid: 0, hostName: 'vm', env: {} };


function rejectsWith(code: ErrorCode, fn: () => unknown): Promise<void> {
  return assert.rejects(async () => fn(), (err) => {
    assert.ok(isVmdeskError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

function throwsWith(code: ErrorCode, fn: () => unknown): void {
  assert.throws(fn, (err) => {
    assert.ok(isVmdeskError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vmdesk-ssh-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let configCount = 0;
/** Writes a config whose known-hosts files live in the temp dir, so nothing reads the real ~/.ssh. */
function writeConfig(text: string): string {
  const file = path.join(tmp, `config-${++configCount}`);
  writeFileSync(file, `${text}\nHost *\n  UserKnownHostsFile ${tmp}/known_hosts\n  GlobalKnownHostsFile ${tmp}/ssh_known_hosts\n`);
  return file;
}

describe('parseDestination', () => {
  test('accepts the forms ssh and vmdesk take', () => {
    assert.deepEqual(parseDestination('kvmhost'), { host: 'kvmhost' });
    assert.deepEqual(parseDestination('alice@kvmhost'), { user: 'alice', host: 'kvmhost' });
    assert.deepEqual(parseDestination('kvmhost:2222'), { host: 'kvmhost', port: 2222 });
    assert.deepEqual(parseDestination('alice@10.0.0.1:2222'), { user: 'alice', host: '10.0.0.1', port: 2222 });
    assert.deepEqual(parseDestination('[fe80::1]:2222'), { host: 'fe80::1', port: 2222 });
    assert.deepEqual(parseDestination('bob@[::1]'), { user: 'bob', host: '::1' });
    assert.deepEqual(parseDestination('fe80::1'), { host: 'fe80::1' });
    assert.deepEqual(parseDestination('ssh://alice@kvmhost:2200'), { user: 'alice', host: 'kvmhost', port: 2200 });
    assert.deepEqual(parseDestination('ssh://kvmhost/'), { host: 'kvmhost' });
    assert.deepEqual(parseDestination('ssh://a%40corp;fingerprint=SHA256-x@[::1]:22'), { user: 'a@corp', host: '::1', port: 22 });
    // OpenSSH splits user from host at the last "@".
    assert.deepEqual(parseDestination('me@corp.example@gw'), { user: 'me@corp.example', host: 'gw' });
  });

  test('rejects junk with USAGE', () => {
    for (const junk of ['', ' ', 'host:', 'host:0', 'host:65536', 'host:ssh', 'user@', '@host', '-oProxyCommand=x', 'a b', 'host;rm', 'h$(id)', '[::1', '[::1]x', 'ssh://h/path', 'a:b:c', 'a,b']) {
      throwsWith('USAGE', () => parseDestination(junk));
    }
  });
});

describe('expandPercentTokens', () => {
  test('expands known tokens and %%, refuses unknown ones', () => {
    assert.equal(expandPercentTokens('%h:%p %%h', { h: 'host', p: '22' }, 't'), 'host:22 %h');
    throwsWith('SSH_CONFIG_INVALID', () => expandPercentTokens('%x', { h: 'host' }, 't'));
    throwsWith('SSH_CONFIG_INVALID', () => expandPercentTokens('trailing %', { h: 'host' }, 't'));
  });
});

describe('parseSshGOutput (captured OpenSSH 9.2 output)', () => {
  test('ProxyJump alias with IdentityFile tokens, expanded as ssh would', () => {
    const h = parseSshGOutput('kvmhost', fixture('basic--kvmhost.ssh-G.txt'), CAPTURED_AS);
    assert.equal(h.alias, 'kvmhost');
    assert.equal(h.hostName, '192.168.0.2');
    assert.equal(h.port, 22);
    assert.equal(h.user, 'root');
    assert.deepEqual(h.identityFiles, ['/root/.ssh/kvm_root@192.168.0.2_22', '/keys/kvmhost-root-/root']);
    assert.equal(h.proxyJump, 'jump');
    assert.equal(h.proxyCommand, undefined);
    assert.deepEqual(h.userKnownHostsFiles, ['/tmp/vmdesk-ssh-config-fixtures/known_hosts']);
    assert.deepEqual(h.globalKnownHostsFiles, ['/tmp/vmdesk-ssh-config-fixtures/ssh_known_hosts']);
    assert.equal(h.strictHostKeyChecking, 'ask');
    assert.equal(h.connectTimeoutMs, undefined);
    assert.equal(h.serverAliveIntervalMs, 15_000, 'ServerAliveInterval 0 becomes the vmdesk keepalive');
    assert.equal(h.serverAliveCountMax, 3);
  });

  test('jump host: its own User, Port and default identities', () => {
    const h = parseSshGOutput('jump', fixture('basic--jump.ssh-G.txt'), CAPTURED_AS);
    assert.equal(h.hostName, '10.1.1.1');
    assert.equal(h.user, 'alice');
    assert.equal(h.port, 2222);
    assert.equal(h.identitiesOnly, true);
    assert.equal(h.identityFiles[0], '/root/.ssh/id_rsa');
    assert.ok(h.identityFiles.includes('/root/.ssh/id_ed25519'));
    const overridden = parseSshGOutput('jump', fixture('basic--bob-at-jump.ssh-G.txt'), CAPTURED_AS);
    assert.equal(overridden.user, 'bob');
    assert.equal(overridden.port, 22);
  });

  test('Include and Match host', () => {
    const lab = parseSshGOutput('lab-kvm', fixture('include--lab-kvm.ssh-G.txt'), CAPTURED_AS);
    assert.deepEqual([lab.hostName, lab.port, lab.user, lab.proxyJump], ['172.16.5.10', 2200, 'admin', 'lab-gw']);
    const vm = parseSshGOutput('vm-7', fixture('match--vm-7.ssh-G.txt'), CAPTURED_AS);
    assert.deepEqual([vm.hostName, vm.user, vm.proxyJump, vm.strictHostKeyChecking], ['10.20.0.vm-7', 'ops', 'bastion', 'accept-new']);
    assert.equal(vm.serverAliveIntervalMs, 60_000);
    assert.equal(vm.serverAliveCountMax, 5);
  });

  test('ProxyCommand/ProxyJump: only the one that applies, tokens left for later', () => {
    const legacy = parseSshGOutput('legacy', fixture('proxy-command--legacy.ssh-G.txt'), CAPTURED_AS);
    assert.equal(legacy.proxyCommand, 'ssh -q -W %h:%p gateway -l %r');
    assert.equal(legacy.proxyJump, undefined);
    assert.equal(legacy.hostKeyAlias, 'legacy-console');
    const viaJump = parseSshGOutput('viajump', fixture('proxy-command--viajump.ssh-G.txt'), CAPTURED_AS);
    assert.deepEqual([viaJump.proxyJump, viaJump.proxyCommand], ['first-wins', undefined]);
    const direct = parseSshGOutput('direct', fixture('proxy-command--direct.ssh-G.txt'), CAPTURED_AS);
    assert.deepEqual([direct.proxyJump, direct.proxyCommand], [undefined, undefined]);
    const overridden = parseSshGOutput('legacy', fixture('proxy-command--j-override.ssh-G.txt'), CAPTURED_AS);
    assert.deepEqual([overridden.proxyJump, overridden.proxyCommand], ['carol@hop:2200', undefined]);
  });

  test('every option away from its default', () => {
    assert.deepEqual(parseSshGOutput('opts', fixture('options--opts.ssh-G.txt'), CAPTURED_AS), {
      alias: 'opts',
      hostName: 'opts.example.org',
      port: 2022,
      user: 'svc',
      identityFiles: ['/root/.ssh/id_vmdesk'],
      certificateFiles: ['/root/.ssh/id_vmdesk-cert.pub'],
      identitiesOnly: true,
      identityAgent: '/root/.ssh/agent.opts.example.org.sock',
      proxyJump: undefined,
      proxyCommand: undefined,
      userKnownHostsFiles: ['/root/.ssh/kh_opts.example.org', '/tmp/vmdesk-ssh-config-fixtures/known_hosts2'],
      globalKnownHostsFiles: ['/etc/vmdesk/known_hosts'],
      revokedHostKeys: [],
      checkHostIp: false,
      strictHostKeyChecking: 'yes',
      hashKnownHosts: true,
      hostKeyAlias: undefined,
      connectTimeoutMs: 7000,
      serverAliveIntervalMs: 30_000,
      serverAliveCountMax: 4,
      batchMode: true,
      passwordAuthentication: false,
      kbdInteractiveAuthentication: false,
      pubkeyAuthentication: true,
    });
    const off = parseSshGOutput('off', fixture('options--off.ssh-G.txt'), CAPTURED_AS);
    assert.equal(off.strictHostKeyChecking, 'no');
    assert.equal(off.connectTimeoutMs, 60_000);
    assert.deepEqual(off.userKnownHostsFiles, []);
    assert.equal(off.identityAgent, 'none');
  });

  test('host-key options: several known_hosts files, ~ and %-tokens, RevokedHostKeys, CheckHostIP', () => {
    const files = parseSshGOutput('files', fixture('host-keys--files.ssh-G.txt'), CAPTURED_AS);
    // ssh -G prints UserKnownHostsFile expanded (%k is the alias without HostKeyAlias)...
    assert.deepEqual(files.userKnownHostsFiles, ['/root/.ssh/kh-files.lab-2222', '/tmp/vmdesk-ssh-config-fixtures/kh-files-root', '/root/.ssh/kh-root']);
    // ...GlobalKnownHostsFile as written: ssh(1) expands only `~` there, never %-tokens.
    assert.deepEqual(files.globalKnownHostsFiles, ['/root/.ssh/global_kh', '/etc/ssh/kh-%h']);
    // OpenSSH 9.2 prints RevokedHostKeys raw; it is expanded like 9.4+ does.
    assert.deepEqual(files.revokedHostKeys, ['/root/.ssh/revoked-files.lab']);
    assert.deepEqual([files.checkHostIp, files.strictHostKeyChecking, files.hashKnownHosts, files.port], [true, 'accept-new', true, 2222]);

    const alias = parseSshGOutput('alias', fixture('host-keys--alias.ssh-G.txt'), CAPTURED_AS);
    // ssh(1) lowercases HostKeyAlias before printing and using it.
    assert.deepEqual([alias.hostKeyAlias, alias.revokedHostKeys, alias.checkHostIp, alias.strictHostKeyChecking], ['console-alias', ['/etc/ssh/revoked.krl'], false, 'ask']);

    const strict = Object.fromEntries(
      ['yes', 'true', 'no', 'off', 'false', 'ask', 'new'].map((v) => [v, parseSshGOutput(`strict-${v}`, fixture(`host-keys--strict-${v}.ssh-G.txt`), CAPTURED_AS).strictHostKeyChecking]),
    );
    assert.deepEqual(strict, { yes: 'yes', true: 'yes', no: 'no', off: 'no', false: 'no', ask: 'ask', new: 'accept-new' });

    const none = parseSshGOutput('strict-none', fixture('host-keys--strict-none.ssh-G.txt'), CAPTURED_AS);
    assert.deepEqual([none.revokedHostKeys, none.globalKnownHostsFiles], [[], []]);
  });

  test('IdentityAgent $VAR reads the environment; unset means no agent', () => {
    const text = 'hostname h\nport 22\nuser u\nidentityagent $MY_AGENT\n';
    assert.equal(parseSshGOutput('h', text, { ...CAPTURED_AS, env: { MY_AGENT: '/run/agent.sock' } }).identityAgent, '/run/agent.sock');
    assert.equal(parseSshGOutput('h', text, CAPTURED_AS).identityAgent, 'none');
  });

  test('IdentityFile ${VAR} and unknown tokens', () => {
    const base = 'hostname h\nport 22\nuser u\n';
    const h = parseSshGOutput('h', `${base}identityfile \${KEYS}/%r\n`, { ...CAPTURED_AS, env: { KEYS: '/k' } });
    assert.deepEqual(h.identityFiles, ['/k/u']);
    throwsWith('SSH_CONFIG_INVALID', () => parseSshGOutput('h', `${base}identityfile \${NOPE}/k\n`, CAPTURED_AS));
    throwsWith('SSH_CONFIG_INVALID', () => parseSshGOutput('h', `${base}identityfile ~/.ssh/%z\n`, CAPTURED_AS));
  });

  test('output without hostname, user or a valid port is SSH_CONFIG_INVALID', () => {
    throwsWith('SSH_CONFIG_INVALID', () => parseSshGOutput('h', 'port 22\nuser u\n', CAPTURED_AS));
    throwsWith('SSH_CONFIG_INVALID', () => parseSshGOutput('h', 'hostname h\nport 22\n', CAPTURED_AS));
    throwsWith('SSH_CONFIG_INVALID', () => parseSshGOutput('h', 'hostname h\nport x\nuser u\n', CAPTURED_AS));
  });
});

describe('resolveHost with the installed ssh', { skip: NO_SSH }, () => {
  const config = writeConfig(`
Host kvmhost
  HostName 192.168.0.2
  ProxyJump jump
Host jump
  HostName 10.1.1.1
  User alice
  Port 2222
`);

  test('applies the config, and -l/-p from options or the destination', async () => {
    const h = await resolveHost('kvmhost', { configFile: config });
    assert.deepEqual([h.alias, h.hostName, h.port, h.proxyJump], ['kvmhost', '192.168.0.2', 22, 'jump']);
    assert.deepEqual(h.userKnownHostsFiles, [`${tmp}/known_hosts`]);
    const j = await resolveHost('bob@jump:2200', { configFile: config });
    assert.deepEqual([j.user, j.port, j.hostName], ['bob', 2200, '10.1.1.1']);
    // As on ssh's command line, -l and -p win over user@ and :port in DEST.
    const o = await resolveHost('bob@jump:2200', { configFile: config, user: 'carol', port: 2201 });
    assert.deepEqual([o.user, o.port], ['carol', 2201]);
  });

  test('jump option acts as -J', async () => {
    const h = await resolveHost('kvmhost', { configFile: config, jump: 'x,bob@y:23' });
    assert.equal(h.proxyJump, 'x,bob@y:23');
    const none = await resolveHost('kvmhost', { configFile: config, jump: 'none' });
    assert.equal(none.proxyJump, undefined);
  });

  test('-i files come first; missing ones are dropped as OpenSSH does', async () => {
    const key = path.join(tmp, 'id_test');
    writeFileSync(key, '');
    const withKeys = writeConfig(`Host k\n  HostName 10.0.0.5\n  IdentityFile ${tmp}/cfg_%h\n`);
    const h = await resolveHost('k', { configFile: withKeys, identityFiles: [key, path.join(tmp, 'missing')] });
    assert.deepEqual(h.identityFiles, [key, `${tmp}/cfg_10.0.0.5`]);
  });

  test('%C matches OpenSSH (its ControlPath is expanded in the -G dump)', async () => {
    const file = writeConfig('Host c\n  HostName 10.3.3.3\n  User u\n  Port 2022\n  IdentityFile /k/%C\n  ControlPath /c/%C\n');
    const dump = execFileSync('ssh', ['-G', '-F', file, 'c'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const controlPath = /^controlpath (.*)$/m.exec(dump)?.[1];
    const h = await resolveHost('c', { configFile: file });
    assert.equal(h.identityFiles[0], `/k/${controlPath?.slice('/c/'.length)}`);
  });

  test('a bad config line is SSH_CONFIG_INVALID naming the file and line', async () => {
    const bad = writeConfig('Host a\n  HostName 10.0.0.1\n  NoSuchOption yes\n');
    await assert.rejects(resolveHost('a', { configFile: bad }), (err) => {
      assert.ok(isVmdeskError(err, 'SSH_CONFIG_INVALID'));
      assert.equal(err.context.file, bad);
      assert.equal(err.context['line'], 3);
      return true;
    });
    const badPort = writeConfig('Host a\n  Port abc\n');
    await assert.rejects(resolveHost('a', { configFile: badPort }), (err) => isVmdeskError(err, 'SSH_CONFIG_INVALID') && err.context['line'] === 2);
    await rejectsWith('SSH_CONFIG_INVALID', () => resolveHost('a', { configFile: path.join(tmp, 'does-not-exist') }));
  });

  test('an explicit ssh binary that does not exist is USAGE', async () => {
    await rejectsWith('USAGE', () => resolveHost('a', { configFile: config, sshBinary: path.join(tmp, 'no-ssh') }));
  });
});

describe('fallback without ssh (ssh-config package)', () => {
  const includeDir = path.join(tmp, 'conf.d');
  mkdirSync(includeDir, { recursive: true });
  writeFileSync(path.join(includeDir, '10-vms.conf'), 'Host inc-vm\n  HostName 10.7.0.2\n  Port 2200\n  ProxyJump jump\n');
  const config = writeConfig(`
Include ${includeDir}/*.conf
Host kvmhost
  HostName 192.168.0.2
  ProxyJump jump
  IdentityFile ~/.ssh/kvm_%r_%h
  CertificateFile ~/.ssh/kvm-cert.pub
  IdentityAgent ~/.ssh/agent.%h
Host jump
  HostName 10.1.1.1
  User alice
  Port 2222
  IdentitiesOnly yes
  ServerAliveInterval 1m
  ConnectTimeout 10
Host legacy
  HostName legacy.%h.example
  ProxyCommand ssh -W %h:%p gw
  ProxyJump ignored
  HostKeyAlias legacy-key
  StrictHostKeyChecking accept-new
Host hostkeys
  HostName hk.example
  Port 2200
  UserKnownHostsFile ~/.ssh/kh-%h-%p ${tmp}/kh-%k %d/kh2
  GlobalKnownHostsFile ~/.ssh/global_kh /etc/ssh/kh-%h
  RevokedHostKeys ~/.ssh/revoked-%h-%r
  CheckHostIP yes
  StrictHostKeyChecking off
Host vm-*
  HostName 10.20.0.5
Match host 10.20.0.*
  User ops
  BatchMode yes
  PasswordAuthentication no
Host *
  IdentityFile ~/.ssh/id_vmdesk
`);

  for (const dest of ['kvmhost', 'jump', 'bob@jump:23', 'legacy', 'vm-1', 'inc-vm', 'plain.example.org', 'hostkeys']) {
    test(`gives what ssh -G gives for ${dest}`, { skip: NO_SSH }, async () => {
      const viaSsh = await resolveHost(dest, { configFile: config });
      const viaFallback = await resolveHost(dest, { configFile: config, sshBinary: null });
      assert.deepEqual(viaFallback, viaSsh);
    });
  }

  test('-J handling matches ssh -G', { skip: NO_SSH }, async () => {
    for (const jump of ['a,b@c:2', 'none']) {
      for (const dest of ['kvmhost', 'legacy']) {
        assert.deepEqual(await resolveHost(dest, { configFile: config, jump, sshBinary: null }), await resolveHost(dest, { configFile: config, jump }));
      }
    }
  });

  test('applies OpenSSH defaults', async () => {
    const empty = path.join(tmp, 'empty-config');
    writeFileSync(empty, '');
    const local = currentLocalIdentity();
    const h = await resolveHost('plain.example.org', { configFile: empty, sshBinary: null });
    assert.equal(h.port, 22);
    assert.equal(h.user, local.userName);
    assert.deepEqual(h.identityFiles, ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_dsa'].map((f) => `${local.homeDir}/.ssh/${f}`));
    assert.deepEqual(h.userKnownHostsFiles, [`${local.homeDir}/.ssh/known_hosts`, `${local.homeDir}/.ssh/known_hosts2`]);
    assert.deepEqual(h.globalKnownHostsFiles, ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']);
    assert.equal(h.strictHostKeyChecking, 'ask');
  });

  test('is used when ssh is not on PATH', async () => {
    const h = await resolveHost('jump', { configFile: config, env: { PATH: path.join(tmp, 'empty-path') } });
    assert.deepEqual([h.hostName, h.user, h.port, h.serverAliveIntervalMs, h.connectTimeoutMs], ['10.1.1.1', 'alice', 2222, 60_000, 10_000]);
  });

  test('an unreadable -F file is SSH_CONFIG_INVALID', async () => {
    await rejectsWith('SSH_CONFIG_INVALID', () => resolveHost('a', { configFile: path.join(tmp, 'nope'), sshBinary: null }));
  });
});
