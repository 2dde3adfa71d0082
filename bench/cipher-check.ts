/**
 * Which cipher each hop uses, so the throughput numbers compare like with
 * like. OpenSSH says so itself (`ssh -v` prints the negotiated cipher per
 * direction for both hops, the ProxyJump child included). vmdesk prints
 * nothing, so its KEXINIT is captured by a fake server in vmd-client and the
 * choice is derived the way every SSH server makes it (RFC 4253 s7.1: the
 * first cipher on the client's list that the server supports), against the
 * lab sshds' lists from `sshd -T`.
 */
import { join } from 'node:path';
import { runChecked } from '../test/lab/exec.js';
import { NAMESPACES } from '../test/lab/netns.js';
import type { BenchLab } from './bench-lab.js';
import { lastJsonLine } from './bench-lab.js';

const PROBE_PORT = 7799;

export interface CipherCheck {
  /** Every `kex: ... cipher:` line of `ssh -v`: two directions x two hops. */
  openssh: string[];
  vmdeskOffer: string[];
  vmdeskVersion: string;
  serverCiphers: Record<'jump' | 'host', string[]>;
  vmdeskNegotiated: Record<'jump' | 'host', string | undefined>;
}

async function serverCiphers(b: BenchLab, name: 'jump' | 'host'): Promise<string[]> {
  const ns = name === 'jump' ? NAMESPACES.jump : NAMESPACES.host;
  const out = await runChecked(['ip', 'netns', 'exec', ns, '/usr/sbin/sshd', '-T', '-f', join(b.lab.paths.stateDir, 'sshd', name, 'sshd_config')]);
  return (/^ciphers (.+)$/m.exec(out)?.[1] ?? '').split(',');
}

export async function checkCiphers(b: BenchLab): Promise<CipherCheck> {
  const v = await b.lab.ssh(['-v', '-F', b.sshConfigPath, '-o', 'BatchMode=yes', 'kvmhost', 'true'], { timeoutMs: 30_000 });
  if (v.code !== 0) throw new Error(`ssh -v kvmhost true failed: ${v.stderr}`);
  const openssh = [...v.stderr.matchAll(/kex: (client->server|server->client) cipher: (\S+)/g)].map((m) => `${m[1]} ${m[2]}`);

  const probe = await b.spawnScript('kexinit-probe', ['--port', String(PROBE_PORT), '--timeout-ms', '30000']);
  // Fails by design once the probe hangs up after KEXINIT.
  await b.lab.vmdesk(['forward', '-F', b.sshConfigPath, '-p', String(PROBE_PORT), '127.0.0.1', '7798'], { timeoutMs: 30_000 });
  const exit = await probe.exited;
  if (exit.code !== 0) throw new Error(`kexinit-probe failed: ${probe.stderr()}`);
  const offer = lastJsonLine<{ version: string; cipherClientToServer: string[] }>(probe.stdout());

  const servers = { jump: await serverCiphers(b, 'jump'), host: await serverCiphers(b, 'host') };
  const pick = (server: string[]) => offer.cipherClientToServer.find((c) => server.includes(c));
  return {
    openssh,
    vmdeskOffer: offer.cipherClientToServer,
    vmdeskVersion: offer.version,
    serverCiphers: servers,
    vmdeskNegotiated: { jump: pick(servers.jump), host: pick(servers.host) },
  };
}
