/**
 * Proves the lab itself with plain OpenSSH only: the seed's topology holds
 * (the client reaches the KVM host only through the jump host), the servers
 * accept the client's key and the server user's password, and `ssh -L`
 * reaches the services on the KVM host's loopback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labDown, labUp, type Lab } from './lab.js';
import { ipForwarding } from './netns.js';
import { echoAt, greetingAt, hashedEchoAt, waitAccepting } from './probes.js';
import { readLine, RelayConnectError } from './sockets.js';

let lab: Lab;
before(async () => {
  lab = await labUp();
}, { timeout: 120_000 });
after(() => labDown(), { timeout: 60_000 });

const BATCH = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5'];

describe('lab topology', () => {
  test('ssh kvmhost goes through the jump host', { timeout: 30_000 }, async () => {
    const jumpMark = await lab.sshdLogMark('jump');
    const hostMark = await lab.sshdLogMark('host');
    const r = await lab.ssh([...BATCH, 'kvmhost', 'true']);
    assert.equal(r.code, 0, r.stderr);
    // The host sees the login coming from the jump host's inner address, the jump host from the client.
    assert.match(await lab.sshdLogSince('jump', jumpMark), /Accepted publickey for labuser from 10\.1\.1\.233 /);
    assert.match(await lab.sshdLogSince('host', hostMark), /Accepted publickey for labuser from 192\.168\.0\.1 /);
  });

  test('the client cannot reach the KVM host directly', { timeout: 30_000 }, async () => {
    assert.equal(await ipForwarding(lab.namespaces.jump), '0');
    await assert.rejects(lab.clientConnect(lab.addresses.host, 22, { timeoutMs: 3000 }), (e: unknown) => {
      assert.ok(e instanceof RelayConnectError);
      assert.ok(['ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT'].includes(e.code), `unexpected ${e.code}`);
      return true;
    });
    // Control: the same probe does reach the jump host's sshd.
    const sock = await lab.clientConnect(lab.addresses.jumpOuter, 22);
    try {
      assert.match(await readLine(sock), /^SSH-2\.0-OpenSSH/);
    } finally {
      sock.destroy();
    }
    const direct = await lab.ssh([...BATCH, `labuser@${lab.addresses.host}`, 'true']);
    assert.equal(direct.code, 255);
  });

  test('the server user can log in with its password', { timeout: 30_000 }, async () => {
    const askpass = await lab.writeClientFile('bin/askpass', '#!/bin/sh\nprintf "%s\\n" "$LAB_PASSWORD"\n', 0o700);
    const mark = await lab.sshdLogMark('jump');
    const r = await lab.ssh(['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password', '-o', 'ConnectTimeout=5', 'jump', 'true'], {
      env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', LAB_PASSWORD: lab.password },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(await lab.sshdLogSince('jump', mark), /Accepted password for labuser from 10\.1\.1\.233 /);
  });
});

describe('the harness', () => {
  // The load test blames vmdesk for any byte that goes missing, so the relay must first prove it loses none.
  test('the client relay carries 200 concurrent 1 MiB echoes intact', { timeout: 120_000 }, async () => {
    const echo = lab.spawnClient(['node', '-e', "require('net').createServer({ allowHalfOpen: true }, (s) => s.pipe(s)).listen(7099, '127.0.0.1')"]);
    try {
      await waitAccepting(lab, 7099);
      const results = await Promise.all(Array.from({ length: 200 }, () => hashedEchoAt(lab, 7099, 1024 * 1024)));
      const bad = results.filter((r) => r.bytesReceived !== r.bytesSent || r.receivedSha256 !== r.sentSha256);
      assert.equal(bad.length, 0, `${bad.length} echoes differ, e.g. ${JSON.stringify(bad[0])}`);
    } finally {
      await echo.stop();
    }
  });
});

describe('ssh -L through kvmhost', () => {
  test('reaches the VNC-like listener on the host loopback', { timeout: 30_000 }, async () => {
    const ssh = lab.spawnSsh([...BATCH, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', '5900:127.0.0.1:5900', 'kvmhost']);
    try {
      await waitAccepting(lab, 5900);
      assert.equal(await greetingAt(lab, 5900), 'port 5900');
      assert.equal(await echoAt(lab, 5900, 'hello'), 'port 5900\nhello');
    } finally {
      await ssh.stop();
    }
  });

  test('reaches the unix socket on the host', { timeout: 30_000 }, async () => {
    const ssh = lab.spawnSsh([...BATCH, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `7200:${lab.services.unixSocket}`, 'kvmhost']);
    try {
      await waitAccepting(lab, 7200);
      assert.equal(await greetingAt(lab, 7200), `unix ${lab.services.unixSocket}`);
    } finally {
      await ssh.stop();
    }
  });

  test('echoes 1 MiB intact through the echo service', { timeout: 60_000 }, async () => {
    const ssh = lab.spawnSsh([...BATCH, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `7100:127.0.0.1:${lab.services.echoPort}`, 'kvmhost']);
    try {
      await waitAccepting(lab, 7100);
      const r = await hashedEchoAt(lab, 7100, 1024 * 1024);
      assert.equal(r.bytesReceived, r.bytesSent);
      assert.equal(r.receivedSha256, r.sentSha256);
    } finally {
      await ssh.stop();
    }
  });
});
