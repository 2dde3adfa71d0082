import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { echoRoundTrip, knownHostsEntry, sha256, startSite, writeConfig, type Site } from './harness.js';
import { freePort } from './free-port.js';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function vmdesk(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

describe('the vmdesk CLI against in-process SSH servers', () => {
  let site: Site;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    site = await startSite();
    const runtime = mkdtempSync(join(tmpdir(), 'vmdesk-rt-'));
    env = { ...process.env, VMDESK_RUNTIME_DIR: runtime, SSH_AUTH_SOCK: '', SSH_ASKPASS: '' };
  });
  after(async () => {
    await vmdesk(['stop', '--all'], env);
    await site.close();
  });

  it('detaches a forward, lists it, shares one connection across tunnels, and stops it', async () => {
    const p1 = await freePort();
    const p2 = await freePort();
    const r1 = await vmdesk(['forward', '-d', '-F', site.configFile, 'target', `${p1}:127.0.0.1:${site.echoPort}`], env);
    assert.equal(r1.code, 0, r1.stderr);
    const payload = randomBytes(300 * 1024);
    assert.equal(await echoRoundTrip(p1, payload), sha256(payload));
    const r2 = await vmdesk(['forward', '-d', '--json', '-F', site.configFile, 'target', `${p2}:127.0.0.1:${site.echoPort}`], env);
    assert.equal(r2.code, 0, r2.stderr);
    const info = JSON.parse(r2.stdout) as { id: string; forwards: { localPort: number }[] };
    assert.equal(info.forwards[0]!.localPort, p2);
    assert.equal(await echoRoundTrip(p2, payload), sha256(payload));
    // Both tunnels ride one chain: one SSH connection to the jump.
    assert.equal(site.jump.connectionCount, 1);
    const ps = await vmdesk(['ps', '--json'], env);
    assert.equal(ps.code, 0, ps.stderr);
    const tunnels = JSON.parse(ps.stdout) as { id: string; state: string; hops: { label: string; state: string }[]; forwards: { total: number; active: number }[] }[];
    assert.equal(tunnels.length, 2);
    for (const t of tunnels) {
      assert.equal(t.state, 'up');
      assert.deepEqual(t.hops.map((h) => h.label), ['jump', 'target']);
      assert.equal(t.forwards[0]!.total, 1);
      assert.equal(t.forwards[0]!.active, 0);
    }
    const stop = await vmdesk(['stop', '--all'], env);
    assert.equal(stop.code, 0, stop.stderr);
    // The agent holds nothing now, so it exits and its socket goes away.
    const sock = join(env.VMDESK_RUNTIME_DIR!, 'agent.sock');
    for (let i = 0; i < 100 && existsSync(sock); i++) await sleep(100);
    assert.equal(existsSync(sock), false, 'agent exited when idle');
    for (let i = 0; i < 50 && site.jump.connectionCount > 0; i++) await sleep(100);
    assert.equal(site.jump.connectionCount, 0);
  });

  it('exits 2 on a bad port spec before connecting', async () => {
    const before = site.jump.counters.authAttempts;
    const r = await vmdesk(['forward', '-d', '-F', site.configFile, 'target', '6000-5900'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /PORT_SPEC_INVALID/);
    assert.equal(site.jump.counters.authAttempts, before);
  });

  it('exits 3 when the local port is taken, and --auto-port moves it', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const r = await vmdesk(['forward', '-d', '--json', '-F', site.configFile, 'target', `${port}:127.0.0.1:${site.echoPort}`], env);
      assert.equal(r.code, 3, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'PORT_IN_USE');
      const r2 = await vmdesk(['forward', '-d', '--json', '--auto-port', '-F', site.configFile, 'target', `${port}:127.0.0.1:${site.echoPort}`], env);
      assert.equal(r2.code, 0, r2.stderr);
      const moved = (JSON.parse(r2.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
      assert.notEqual(moved, port);
      assert.equal(await echoRoundTrip(moved, Buffer.from('moved')), sha256(Buffer.from('moved')));
    } finally {
      taken.close();
      await vmdesk(['stop', '--all'], env);
    }
  });

  it('exits 4 on an unknown host key and 5 on a changed one', async () => {
    const kh = join(site.dir, 'kh_cli');
    writeFileSync(kh, `${knownHostsEntry(site.jump.port, site.jump.hostPublicKey)}\n`);
    const cfg = join(site.dir, 'cfg_cli');
    writeConfig(cfg, { jumpPort: site.jump.port, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: kh });
    const unknown = await vmdesk(['forward', '-d', '-F', cfg, 'target', `${await freePort()}:127.0.0.1:${site.echoPort}`], env);
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, /--accept-new-host-key/);
    writeFileSync(kh, `${knownHostsEntry(site.jump.port, site.jump.hostPublicKey)}\n${knownHostsEntry(site.target.port, site.jump.hostPublicKey)}\n`);
    const changed = await vmdesk(['forward', '-d', '-F', cfg, 'target', `${await freePort()}:127.0.0.1:${site.echoPort}`], env);
    assert.equal(changed.code, 5, changed.stderr);
    assert.match(changed.stderr, /ssh-keygen -R/);
  });

  it('runs in the foreground until interrupted', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'forward', '-F', site.configFile, 'target', `${port}:127.0.0.1:${site.echoPort}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 200 && !out.includes('Ctrl-C'); i++) await sleep(50);
    assert.match(out, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.equal(await echoRoundTrip(port, Buffer.from('fg')), sha256(Buffer.from('fg')));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  });
});

describe('authentication and transports of the CLI', () => {
  let site: Site;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    site = await startSite({ targetPassword: 'pa55-word' });
    env = { ...process.env, VMDESK_RUNTIME_DIR: mkdtempSync(join(tmpdir(), 'vmdesk-rt-')), SSH_AUTH_SOCK: '' };
  });
  after(async () => {
    await vmdesk(['stop', '--all'], env);
    await site.close();
  });

  it('asks for a password through SSH_ASKPASS (no terminal) and uses it', async () => {
    const missingKey = join(site.dir, 'no-such-key');
    const cfg = join(site.dir, 'cfg_password');
    writeConfig(cfg, { jumpPort: site.jump.port, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: site.knownHosts, targetKeyFile: missingKey });
    // BatchMode (set by writeConfig) forbids prompts, as in OpenSSH: drop it for this config.
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replaceAll('  BatchMode yes\n', ''));
    const askpass = join(site.dir, 'askpass.sh');
    writeFileSync(askpass, `#!/bin/sh\necho "$1" >> ${join(site.dir, 'asked.txt')}\necho pa55-word\n`, { mode: 0o755 });
    const port = await freePort();
    const r = await vmdesk(['forward', '-d', '-F', cfg, 'target', `${port}:127.0.0.1:${site.echoPort}`], { ...env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(join(site.dir, 'asked.txt'), 'utf8'), /bob@127\.0\.0\.1's password/);
    assert.equal(await echoRoundTrip(port, Buffer.from('pw')), sha256(Buffer.from('pw')));
    // Without a way to ask, the same config fails on that hop with exit 6.
    await vmdesk(['stop', '--all'], env);
    const batch = await vmdesk(['forward', '-d', '--json', '-F', cfg, 'target', `${await freePort()}:127.0.0.1:${site.echoPort}`], { ...env, SSH_ASKPASS: '' });
    assert.equal(batch.code, 6, batch.stderr);
    const err = (JSON.parse(batch.stdout) as { error: { code: string; context: { hop: string } } }).error;
    assert.equal(err.code, 'SSH_AUTH_FAILED');
    assert.equal(err.context.hop, 'target');
  });

  it('reaches a hop through a ProxyCommand (OpenSSH ssh -W through the jump)', async () => {
    const cfg = join(site.dir, 'cfg_proxycommand');
    writeConfig(cfg, { jumpPort: site.jump.port, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: site.knownHosts });
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('  ProxyJump jump\n', `  ProxyCommand ssh -F ${cfg} -W %h:%p jump\n`));
    const before = site.jump.counters.channels;
    const port = await freePort();
    const r = await vmdesk(['forward', '-d', '-F', cfg, 'target', `${port}:127.0.0.1:${site.echoPort}`], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await echoRoundTrip(port, Buffer.from('via proxy')), sha256(Buffer.from('via proxy')));
    assert.ok(site.jump.counters.channels > before, 'the jump carried the ProxyCommand channel');
    const ps = JSON.parse((await vmdesk(['ps', '--json'], env)).stdout) as { hops: { label: string }[] }[];
    assert.deepEqual(ps[0]!.hops.map((h) => h.label), ['target']);
  });
});

describe('questions asked on a terminal, as OpenSSH asks them', () => {
  let site: Site;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    site = await startSite();
    env = { ...process.env, VMDESK_RUNTIME_DIR: mkdtempSync(join(tmpdir(), 'vmdesk-rt-')), SSH_AUTH_SOCK: '', SSH_ASKPASS: '' };
  });
  after(async () => {
    await site.close();
  });

  it('asks whether to trust an unknown host key on the terminal, and records it on "yes"', { timeout: 60_000 }, async () => {
    const kh = join(site.dir, 'kh_tty');
    writeFileSync(kh, `${knownHostsEntry(site.jump.port, site.jump.hostPublicKey)}\n`);
    const cfg = join(site.dir, 'cfg_tty');
    writeConfig(cfg, { jumpPort: site.jump.port, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: kh });
    // A terminal may be asked: drop BatchMode, and let StrictHostKeyChecking ask.
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replaceAll('  BatchMode yes\n', '').replaceAll('StrictHostKeyChecking yes', 'StrictHostKeyChecking ask'));
    const port = await freePort();
    const cmd = [process.execPath, '--import', 'tsx', MAIN, 'forward', '-F', cfg, 'target', `${port}:127.0.0.1:${site.echoPort}`].map((a) => `'${a}'`).join(' ');
    // util-linux `script` gives the CLI a real pseudo-terminal.
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 200 && !out.includes('continue connecting'); i++) await sleep(50);
    assert.match(out, /The authenticity of host 'target'/);
    assert.match(out, /ED25519|ssh-ed25519/i);
    child.stdin.write('yes\r');
    for (let i = 0; i < 200 && !out.includes('Ctrl-C'); i++) await sleep(50);
    assert.equal(await echoRoundTrip(port, Buffer.from('tty')), sha256(Buffer.from('tty')));
    assert.match(readFileSync(kh, 'utf8'), new RegExp(`\\[127\\.0\\.0\\.1\\]:${site.target.port} ssh-ed25519 `));
    const exited = new Promise((r) => child.on('close', r));
    child.stdin.write('\u0003');
    child.kill('SIGTERM');
    await exited;
  });
});

describe('keys, certificates and a stale agent', () => {
  let site: Site;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    site = await startSite();
    env = { ...process.env, VMDESK_RUNTIME_DIR: mkdtempSync(join(tmpdir(), 'vmdesk-rt-')), SSH_AUTH_SOCK: '' };
  });
  after(async () => {
    await vmdesk(['stop', '--all'], env);
    await site.close();
  });

  it('asks for the passphrase of an encrypted key (SSH_ASKPASS) and logs in with it', async () => {
    const { DemoSshServer, generateEd25519 } = await import('../../src/demo/ssh-server.js');
    const enc = generateEd25519('enc', 'open-sesame');
    const encKey = join(site.dir, 'id_enc');
    writeFileSync(encKey, enc.privateKey, { mode: 0o600 });
    // The target accepts the encrypted key's public half (a second site user key).
    const target2 = new DemoSshServer({ user: 'bob', authorizedKeys: [enc.publicKey] });
    await target2.start();
    try {
      const kh = join(site.dir, 'kh_enc');
      writeFileSync(kh, `${knownHostsEntry(site.jump.port, site.jump.hostPublicKey)}\n${knownHostsEntry(target2.port, target2.hostPublicKey)}\n`);
      const cfg = join(site.dir, 'cfg_enc');
      writeConfig(cfg, { jumpPort: site.jump.port, targetPort: target2.port, keyFile: site.keyFile, knownHosts: kh, targetKeyFile: encKey });
      writeFileSync(cfg, readFileSync(cfg, 'utf8').replaceAll('  BatchMode yes\n', ''));
      const askpass = join(site.dir, 'askpass-enc.sh');
      writeFileSync(askpass, `#!/bin/sh\necho "$1" >> ${join(site.dir, 'asked-enc.txt')}\necho open-sesame\n`, { mode: 0o755 });
      const port = await freePort();
      const r = await vmdesk(['forward', '-d', '-F', cfg, 'target', `${port}:127.0.0.1:${site.echoPort}`], { ...env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(readFileSync(join(site.dir, 'asked-enc.txt'), 'utf8'), /Enter passphrase for key '.*id_enc'/);
      assert.equal(await echoRoundTrip(port, Buffer.from('enc')), sha256(Buffer.from('enc')));
      // Without a way to ask, the encrypted key cannot be used: the failure names the hop.
      await vmdesk(['stop', '--all'], env);
      const batch = await vmdesk(['forward', '-d', '--json', '-F', cfg, 'target', `${await freePort()}:127.0.0.1:${site.echoPort}`], { ...env, SSH_ASKPASS: '' });
      assert.equal(batch.code, 6, batch.stderr);
      assert.match((JSON.parse(batch.stdout) as { error: { message: string } }).error.message, /encrypted, no passphrase/);
    } finally {
      await target2.stop();
    }
  });

  it('says plainly that an OpenSSH certificate cannot be used', async () => {
    const wrong = (await import('../../src/demo/ssh-server.js')).generateEd25519('wrong');
    const key = join(site.dir, 'id_cert');
    writeFileSync(key, wrong.privateKey, { mode: 0o600 });
    // The mere presence of KEY-cert.pub is how OpenSSH picks up a certificate.
    writeFileSync(`${key}-cert.pub`, 'ssh-ed25519-cert-v01@openssh.com AAAA placeholder\n');
    const cfg = join(site.dir, 'cfg_cert');
    writeConfig(cfg, { jumpPort: site.jump.port, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: site.knownHosts, targetKeyFile: key });
    const r = await vmdesk(['forward', '-d', '--json', '-F', cfg, 'target', `${await freePort()}:127.0.0.1:${site.echoPort}`], env);
    assert.equal(r.code, 6, r.stderr);
    const err = (JSON.parse(r.stdout) as { error: { code: string; context: { hop: string } } }).error;
    assert.equal(err.code, 'SSH_CERT_UNSUPPORTED');
    assert.equal(err.context.hop, 'target');
  });

  it('replaces an agent from another build without losing the command', async () => {
    // A stand-in "old agent": answers hello with another build id, and shutdown by going away.
    const { agentSocketPath } = await import('../../src/daemon/runtime-dir.js');
    const { readMessages, writeMessage } = await import('../../src/daemon/control-protocol.js');
    // A runtime directory of its own: the agent of the tests above may still be idling out in theirs.
    const rtEnv = { ...env, VMDESK_RUNTIME_DIR: mkdtempSync(join(tmpdir(), 'vmdesk-rt-')) };
    const path = agentSocketPath(rtEnv.VMDESK_RUNTIME_DIR);
    let askedToGo = false;
    const old = net.createServer((sock) => {
      readMessages(
        sock,
        (m) => {
          if (m.method === 'hello') writeMessage(sock, { id: m.id, result: { version: '0.0.1', build: '0.0.1+old', protocol: 1, pid: 1 } });
          if (m.method === 'shutdown') {
            askedToGo = true;
            writeMessage(sock, { id: m.id, result: { ok: true } });
            old.close();
            sock.end();
          }
        },
        () => {},
      );
    });
    await new Promise<void>((r) => old.listen(path, () => r()));
    const port = await freePort();
    const r = await vmdesk(['forward', '-d', '-F', site.configFile, 'target', `${port}:127.0.0.1:${site.echoPort}`], rtEnv);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(askedToGo, true);
    assert.match(r.stderr, /replacing vmdesk agent 0\.0\.1\+old/);
    assert.equal(await echoRoundTrip(port, Buffer.from('new agent')), sha256(Buffer.from('new agent')));
    await vmdesk(['stop', '--all'], rtEnv);
  });
});
