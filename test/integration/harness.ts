/**
 * Integration fixtures: two in-process SSH servers on 127.0.0.1 (a jump host
 * and a target behind it), an echo service, a client key, known_hosts and an
 * ssh_config in a temp directory that every test passes with -F.
 */
import net from 'node:net';
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { DemoSshServer, generateEd25519, type ExecHandler } from '../../src/demo/ssh-server.js';

export interface Site {
  dir: string;
  configFile: string;
  knownHosts: string;
  keyFile: string;
  jump: DemoSshServer;
  target: DemoSshServer;
  echoPort: number;
  echoServer: net.Server;
  close(): Promise<void>;
}

export function knownHostsEntry(port: number, key: Buffer): string {
  return `[127.0.0.1]:${port} ssh-ed25519 ${key.toString('base64')}`;
}

/** An echo server on 127.0.0.1 that keeps half-closed sockets open until it has answered. */
export async function startEcho(): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return server;
}

export function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

export async function startSite(opts: { targetPassword?: string; targetExec?: ExecHandler } = {}): Promise<Site> {
  const dir = mkdtempSync(join(tmpdir(), 'vmdesk-it-'));
  const client = generateEd25519('client');
  const keyFile = join(dir, 'id_ed25519');
  writeFileSync(keyFile, client.privateKey, { mode: 0o600 });
  writeFileSync(`${keyFile}.pub`, `${client.publicKey}\n`);
  const jump = new DemoSshServer({ user: 'alice', authorizedKeys: [client.publicKey] });
  const target = new DemoSshServer({
    user: 'bob',
    authorizedKeys: [client.publicKey],
    ...(opts.targetPassword ? { password: opts.targetPassword } : {}),
    ...(opts.targetExec ? { exec: opts.targetExec } : {}),
  });
  await jump.start();
  await target.start();
  const echoServer = await startEcho();
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `${knownHostsEntry(jump.port, jump.hostPublicKey)}\n${knownHostsEntry(target.port, target.hostPublicKey)}\n`);
  const configFile = join(dir, 'config');
  writeConfig(configFile, { jumpPort: jump.port, targetPort: target.port, keyFile, knownHosts });
  return {
    dir,
    configFile,
    knownHosts,
    keyFile,
    jump,
    target,
    echoPort: portOf(echoServer),
    echoServer,
    async close() {
      await jump.stop();
      await target.stop();
      echoServer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function writeConfig(file: string, o: { jumpPort: number; targetPort: number; keyFile: string; knownHosts: string; targetKeyFile?: string }): void {
  const common = (key: string) =>
    `  HostName 127.0.0.1\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${o.knownHosts}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n`;
  writeFileSync(
    file,
    `Host jump\n  Port ${o.jumpPort}\n  User alice\n${common(o.keyFile)}\nHost target\n  Port ${o.targetPort}\n  User bob\n  ProxyJump jump\n${common(o.targetKeyFile ?? o.keyFile)}`,
  );
  chmodSync(file, 0o600);
}

/** Send `payload` over a fresh TCP connection, half-close, and return the sha256 of all that came back. */
export function echoRoundTrip(port: number, payload: Buffer, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const sock = net.connect({ port, host, allowHalfOpen: true });
    sock.on('connect', () => sock.end(payload));
    sock.on('data', (d: Buffer) => hash.update(d));
    sock.on('end', () => resolve(hash.digest('hex')));
    sock.on('error', reject);
  });
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
