/**
 * One forward from the client's 127.0.0.1:LPORT to a port on the KVM host's
 * loopback, through jump, made either by vmdesk (a detached tunnel in the
 * agent) or by OpenSSH (`ssh -N -L` with ProxyJump, i.e. an `ssh -W` child
 * for the first hop). Both read the bench's ssh_config.
 */
import type { ClientProcess } from '../test/lab/lab.js';
import { waitAccepting } from '../test/lab/probes.js';
import type { BenchLab } from './bench-lab.js';
import { descendantsOf } from './proc-stats.js';

export type Tool = 'vmdesk' | 'openssh';

export interface Forward {
  tool: Tool;
  localPort: number;
  /** The client-side processes doing the work: the vmdesk agent, or ssh and its ProxyJump child. */
  clientPids(): Promise<number[]>;
  stop(): Promise<void>;
}

export async function openVmdeskForward(b: BenchLab, localPort: number, remotePort: number): Promise<Forward> {
  const r = await b.vmdeskOk(['forward', '-d', '--json', '-F', b.sshConfigPath, 'kvmhost', `${localPort}:127.0.0.1:${remotePort}`]);
  const info = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { id?: string; pid?: number };
  if (typeof info.id !== 'string' || typeof info.pid !== 'number') throw new Error(`vmdesk forward --json printed no id/pid: ${r.stdout}`);
  const { id, pid } = info;
  return {
    tool: 'vmdesk',
    localPort,
    clientPids: async () => [pid],
    async stop() {
      await b.lab.vmdesk(['stop', id], { timeoutMs: 20_000 });
    },
  };
}

export async function openOpenSshForward(b: BenchLab, localPort: number, remotePort: number): Promise<Forward> {
  const p: ClientProcess = b.lab.spawnSsh(['-F', b.sshConfigPath, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${localPort}:127.0.0.1:${remotePort}`, 'kvmhost']);
  let exited = false;
  void p.exited.then(() => (exited = true));
  try {
    await waitAccepting(b.lab, localPort, 20_000);
  } catch (e) {
    await p.stop();
    throw new Error(`ssh -L ${localPort} did not start accepting${exited ? `; it exited: ${p.stderr()}` : ''}`, { cause: e });
  }
  return {
    tool: 'openssh',
    localPort,
    clientPids: async () => [p.pid, ...(await descendantsOf(p.pid))],
    stop: () => p.stop(),
  };
}

export function openForward(tool: Tool, b: BenchLab, localPort: number, remotePort: number): Promise<Forward> {
  return tool === 'vmdesk' ? openVmdeskForward(b, localPort, remotePort) : openOpenSshForward(b, localPort, remotePort);
}

/** Alternates which tool goes first in each repetition, so slow drift in the machine's load hits both alike. */
export function interleaved(rep: number): Tool[] {
  return rep % 2 === 0 ? ['vmdesk', 'openssh'] : ['openssh', 'vmdesk'];
}
