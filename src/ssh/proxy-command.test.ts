import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { expandProxyCommand, spawnProxyCommand } from './proxy-command.js';
import type { LocalIdentity } from './ssh-config.js';

const LOCAL: LocalIdentity = { userName: 'me', homeDir: '/home/me', uid: 1000, hostName: 'laptop', env: {} };
const TARGET = { host: '10.0.0.5', port: 2222, user: 'alice', alias: 'kvmhost' };

/** Reads a stream to its end. */
async function readAll(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Quotes one argument for /bin/sh. */
const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

describe('expandProxyCommand', () => {
  test('expands %h %p %r %n %k %% like OpenSSH', () => {
    assert.equal(expandProxyCommand('nc %h %p # %r %n %k 100%%', TARGET, LOCAL), 'nc 10.0.0.5 2222 # alice kvmhost kvmhost 100%');
    assert.equal(expandProxyCommand('x %k', { ...TARGET, hostKeyAlias: 'console-key' }, LOCAL), 'x console-key');
  });

  test('expands ~ at the start of unquoted words only, as /bin/sh would', () => {
    assert.equal(expandProxyCommand('~/bin/proxy --key ~/.ssh/k "~/quoted" a~b ~me/x', TARGET, LOCAL), '/home/me/bin/proxy --key /home/me/.ssh/k "~/quoted" a~b /home/me/x');
    assert.equal(expandProxyCommand("sh -c '~/x' ~", TARGET, LOCAL), "sh -c '~/x' /home/me");
  });

  test('an unknown token is SSH_CONFIG_INVALID', () => {
    assert.throws(() => expandProxyCommand('nc %h %z', TARGET, LOCAL), (err) => isVmdeskError(err, 'SSH_CONFIG_INVALID'));
  });
});

describe('spawnProxyCommand', () => {
  test('cat: writes come back as reads, end closes both ways', async () => {
    const { stream, child } = spawnProxyCommand('cat');
    const received = readAll(stream);
    stream.write('SSH-2.0-test\r\n');
    stream.end('more bytes');
    assert.equal(await received, 'SSH-2.0-test\r\nmore bytes');
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 0);
  });

  test('pipes to a real TCP server through a node proxy script (%h %p expanded)', async () => {
    const server = createServer((socket) => socket.pipe(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const script = "const s=require('net').connect(+process.argv[2],process.argv[1]);process.stdin.pipe(s);s.pipe(process.stdout)";
      const command = expandProxyCommand(`${sh(process.execPath)} -e ${sh(script)} %h %p`, { ...TARGET, host: '127.0.0.1', port }, LOCAL);
      const { stream } = spawnProxyCommand(command);
      const payload = Buffer.alloc(256 * 1024, 'x').toString() + 'END';
      const received = readAll(stream);
      stream.end(payload);
      assert.equal(await received, payload);
    } finally {
      server.close();
    }
  });

  test('a command failing before any output errors with SSH_PROXY_COMMAND_FAILED and its stderr', async () => {
    // Like OpenSSH, the command runs as `exec COMMAND`: a compound command needs its own shell.
    const { stream } = spawnProxyCommand(`sh -c 'echo "proxy: no route to kvmhost" >&2; exit 3'`);
    await assert.rejects(readAll(stream), (err) => {
      assert.ok(isVmdeskError(err, 'SSH_PROXY_COMMAND_FAILED'));
      assert.equal(err.context['exitCode'], 3);
      assert.match(String(err.context['stderr']), /no route to kvmhost/);
      return true;
    });
  });

  test('a command that does not exist is SSH_PROXY_COMMAND_FAILED', async () => {
    const { stream } = spawnProxyCommand('/nonexistent/vmdesk-proxy --flag');
    await assert.rejects(readAll(stream), (err) => isVmdeskError(err, 'SSH_PROXY_COMMAND_FAILED') && err.context['exitCode'] === 127);
  });

  test('a clean exit without data just ends the stream', async () => {
    const { stream } = spawnProxyCommand('true');
    assert.equal(await readAll(stream), '');
  });

  test('output then a non-zero exit ends the stream (ssh2 sees the close)', async () => {
    const { stream } = spawnProxyCommand(`sh -c 'printf SSH-2.0-x; exit 1'`);
    assert.equal(await readAll(stream), 'SSH-2.0-x');
  });

  test('destroying the stream kills the child', async () => {
    const { stream, child } = spawnProxyCommand('sleep 30');
    const closed = once(child, 'close');
    stream.destroy();
    const [code, signal] = (await closed) as [number | null, NodeJS.Signals | null];
    assert.equal(code, null);
    assert.equal(signal, 'SIGTERM');
  });
});
