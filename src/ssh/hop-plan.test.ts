import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isVmdeskError, type ErrorCode } from '../errors.js';
import { formatJumpSpec, parseJumpList, planHops, type PlanOptions } from './hop-plan.js';
import type { HopSpec } from './types.js';
import { NO_SSH } from '../../test/openssh-client.js';

/** OpenSSH's default remote user: the local login name. */
const me = os.userInfo().username;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vmdesk-hop-plan-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let configCount = 0;
/**
 * A config in a temp dir; known-hosts and key paths point there so the real ~/.ssh is never read
 * (and OpenSSH's version-dependent default key list does not matter).
 */
function writeConfig(text: string): string {
  const file = path.join(tmp, `config-${++configCount}`);
  writeFileSync(file, `${text}\nHost *\n  UserKnownHostsFile ${tmp}/known_hosts\n  GlobalKnownHostsFile ${tmp}/ssh_known_hosts\n  IdentityFile ${tmp}/id_%r\n`);
  return file;
}

/** The parts of a plan the assertions care about. */
function summary(hops: HopSpec[]): Array<[string, string, string, number, string]> {
  return hops.map((h) => [h.label, h.host.user, h.host.hostName, h.host.port, h.transport.kind === 'proxy-command' ? `proxy-command: ${h.transport.command}` : h.transport.kind]);
}

async function rejectsWith(code: ErrorCode, promise: Promise<unknown>): Promise<VmdeskErrorLike> {
  let caught: unknown;
  await assert.rejects(promise, (err) => {
    caught = err;
    assert.ok(isVmdeskError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
  return caught as VmdeskErrorLike;
}
type VmdeskErrorLike = { code: string; message: string; context: Record<string, unknown> };

const CONFIG = `
Host kvmhost
  HostName 192.168.0.2
  User root
  ProxyJump jump

Host jump
  HostName 10.1.1.1
  User alice

Host inner
  HostName 172.16.0.9
  User vmadmin
  ProxyJump kvmhost

Host deep
  HostName 10.99.0.1
  ProxyJump mid,bob@side:2200

Host mid
  HostName 10.2.2.2
  ProxyJump viaproxy

Host side
  HostName 10.3.3.3
  User carol
  ProxyJump never-used-because-not-first

Host viaproxy
  HostName 10.4.4.4
  User px
  Port 2022
  ProxyCommand nc -X connect -x proxy.example:3128 %h %p

Host legacy
  HostName 10.5.5.5
  ProxyCommand ssh -W %h:%p -l %r gateway
  ProxyJump ignored

Host loop-a
  ProxyJump loop-b
Host loop-b
  ProxyJump loop-c
Host loop-c
  ProxyJump loop-a

Host tok
  HostName 10.6.6.6
  User tu
  ProxyJump %r@gw-%n
`;

describe('planHops with the installed ssh', { skip: NO_SSH }, () => {
  const configFile = writeConfig(CONFIG);
  const plan = (dest: string, opts: PlanOptions = {}): Promise<HopSpec[]> => planHops(dest, { configFile, ...opts });

  test('ProxyJump through an alias: the jump host keeps its own HostName and User', async () => {
    const hops = await plan('kvmhost');
    assert.deepEqual(summary(hops), [
      ['jump', 'alice', '10.1.1.1', 22, 'tcp'],
      ['kvmhost', 'root', '192.168.0.2', 22, 'via-previous-hop'],
    ]);
    assert.equal(hops[1]?.host.proxyJump, 'jump');
    assert.deepEqual(hops[0]?.host.userKnownHostsFiles, [`${tmp}/known_hosts`]);
  });

  test('a host without proxy is one tcp hop, labelled user@host (no :22)', async () => {
    assert.deepEqual(summary(await plan('alice@10.9.9.9')), [['alice@10.9.9.9', 'alice', '10.9.9.9', 22, 'tcp']]);
    assert.deepEqual(summary(await plan('alice@[fd00::5]:2200')), [['alice@[fd00::5]:2200', 'alice', 'fd00::5', 2200, 'tcp']]);
  });

  test('nested ProxyJump: the jump host\'s own ProxyJump applies', async () => {
    assert.deepEqual(summary(await plan('inner')), [
      ['jump', 'alice', '10.1.1.1', 22, 'tcp'],
      ['kvmhost', 'root', '192.168.0.2', 22, 'via-previous-hop'],
      ['inner', 'vmadmin', '172.16.0.9', 22, 'via-previous-hop'],
    ]);
  });

  test('a list: only its first host recurses (the others get -J), ProxyCommand starts the chain', async () => {
    // OpenSSH: ssh -J mid -l bob -p 2200 -W ... side; ssh -W ... mid; mid's ProxyJump viaproxy has a ProxyCommand.
    const hops = await plan('deep');
    assert.deepEqual(summary(hops), [
      ['viaproxy', 'px', '10.4.4.4', 2022, 'proxy-command: nc -X connect -x proxy.example:3128 10.4.4.4 2022'],
      ['mid', me, '10.2.2.2', 22, 'via-previous-hop'],
      ['bob@side:2200', 'bob', '10.3.3.3', 2200, 'via-previous-hop'],
      ['deep', me, '10.99.0.1', 22, 'via-previous-hop'],
    ]);
    assert.equal(hops[2]?.host.proxyJump, 'mid', 'side is resolved as `ssh -J mid side` would');
  });

  test('-J overrides ProxyJump, with user and port overriding the jump host\'s config', async () => {
    const hops = await plan('kvmhost', { jump: 'bob@jump:2200' });
    assert.deepEqual(summary(hops), [
      ['bob@jump:2200', 'bob', '10.1.1.1', 2200, 'tcp'],
      ['kvmhost', 'root', '192.168.0.2', 22, 'via-previous-hop'],
    ]);
    assert.equal(hops[1]?.host.proxyJump, 'bob@jump:2200');
  });

  test('-J list: the first jump host keeps its own ProxyJump', async () => {
    assert.deepEqual(summary(await plan('10.8.8.8', { jump: 'kvmhost,ssh://side:2201', user: 'u' })), [
      ['jump', 'alice', '10.1.1.1', 22, 'tcp'],
      ['kvmhost', 'root', '192.168.0.2', 22, 'via-previous-hop'],
      ['side:2201', 'carol', '10.3.3.3', 2201, 'via-previous-hop'],
      ['u@10.8.8.8', 'u', '10.8.8.8', 22, 'via-previous-hop'],
    ]);
  });

  test('-J none: no jump', async () => {
    assert.deepEqual(summary(await plan('kvmhost', { jump: 'none' })), [['kvmhost', 'root', '192.168.0.2', 22, 'tcp']]);
  });

  test('ProxyCommand (set before ProxyJump) drives the only hop, tokens expanded', async () => {
    const hops = await plan('legacy');
    assert.equal(hops.length, 1);
    assert.deepEqual(hops[0]?.transport, { kind: 'proxy-command', command: `ssh -W 10.5.5.5:22 -l ${me} gateway` });
    assert.equal(hops[0]?.host.proxyCommand, 'ssh -W %h:%p -l %r gateway');
  });

  test('ProxyJump hosts take %r %n of the host they lead to', async () => {
    const hops = await plan('tok');
    assert.deepEqual(summary(hops)[0], ['tu@gw-tok', 'tu', 'gw-tok', 22, 'tcp']);
  });

  test('a ProxyJump loop is SSH_CONFIG_INVALID', async () => {
    const err = await rejectsWith('SSH_CONFIG_INVALID', plan('loop-a'));
    assert.deepEqual(err.context['chain'], ['loop-a', 'loop-b', 'loop-c', 'loop-a']);
    const twoWay = writeConfig('Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n');
    await rejectsWith('SSH_CONFIG_INVALID', planHops('a', { configFile: twoWay }));
  });

  test('more than maxHops is SSH_CONFIG_INVALID', async () => {
    await rejectsWith('SSH_CONFIG_INVALID', plan('inner', { maxHops: 2 }));
    assert.equal((await plan('inner', { maxHops: 3 })).length, 3);
    // `Host j-*` + `ProxyJump j-%h` never repeats a name but never ends either.
    const endless = writeConfig('Host j-*\n  ProxyJump j-%h\n');
    await rejectsWith('SSH_CONFIG_INVALID', planHops('j-x', { configFile: endless }));
  });

  test('bad -J, destination or maxHops is USAGE', async () => {
    await rejectsWith('USAGE', plan('kvmhost', { jump: 'a,,b' }));
    await rejectsWith('USAGE', plan('kvmhost', { jump: 'a,none' }));
    await rejectsWith('USAGE', plan('kvm host'));
    await rejectsWith('USAGE', plan('kvmhost', { maxHops: 0 }));
  });

  test('the fallback without ssh plans the same chains', async () => {
    for (const [dest, opts] of [['kvmhost', {}], ['inner', {}], ['deep', {}], ['legacy', {}], ['kvmhost', { jump: 'bob@jump:2200' }]] as const) {
      assert.deepEqual(await plan(dest, { ...opts, sshBinary: null }), await plan(dest, opts), dest);
    }
  });
});

describe('parseJumpList', () => {
  test('parses and formats jump specs', () => {
    assert.deepEqual(parseJumpList('a,bob@b:2222,ssh://c,[::1]:23'), [{ host: 'a' }, { user: 'bob', host: 'b', port: 2222 }, { host: 'c' }, { host: '::1', port: 23 }]);
    assert.deepEqual(parseJumpList('none'), []);
    assert.equal(formatJumpSpec({ user: 'u', host: '::1', port: 23 }), 'u@[::1]:23');
  });

  test('errors are USAGE from the command line and SSH_CONFIG_INVALID from the config', () => {
    assert.throws(() => parseJumpList('a,b:x'), (err) => isVmdeskError(err, 'USAGE'));
    assert.throws(() => parseJumpList('a,b:x', 'config', 'kvm'), (err) => isVmdeskError(err, 'SSH_CONFIG_INVALID'));
  });
});
