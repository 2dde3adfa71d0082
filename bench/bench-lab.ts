/**
 * The lab as the benches use it: the real lab (test/lab/lab.ts) plus what
 * only benches need: the measuring clients installed for the client user, a
 * sink and an echo on the KVM host's loopback, an ssh_config that pins
 * OpenSSH's cipher, and ways to find, measure and stop the processes that
 * vmdesk and OpenSSH leave on the client, the jump host and the KVM host.
 */
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHECKOUT, labDown, labUp, type ClientProcess, type Lab, type RunResult } from '../test/lab/lab.js';
import { clientSshConfig } from '../test/lab/accounts.js';
import { killGroup, spawnDetached } from '../test/lab/exec.js';
import { libvirtDown, libvirtUp, type Hypervisor } from '../test/lab/libvirt/hypervisor.js';
import { NAMESPACES, pidsIn } from '../test/lab/netns.js';
import { killPids, processName } from '../test/lab/processes.js';
import { pollUntil, PollAbortError } from '../test/lab/poll.js';
import { installClientScripts, type ClientScripts } from './client-scripts.js';
import { processArgv, processUid } from './proc-stats.js';

/** Ports on the KVM host's loopback; the lab's own services use 7000 and 5900-6000. */
export const SINK_PORT = 7100;
export const ECHO_PORT = 7101;

/** OpenSSH's fastest AEAD on AES-NI hardware; vmdesk prefers it too (src/ssh/chain.ts). */
export const BENCH_CIPHER = 'aes128-gcm@openssh.com';

export function describeRun(argv: readonly string[], r: RunResult): string {
  return `${argv.join(' ')}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** The last non-empty line of a client script's output, parsed as JSON. */
export function lastJsonLine<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? 'null') as T;
}

export class BenchLab {
  private serverBaseline = new Set<number>();
  private hypervisor: Promise<Hypervisor> | undefined;

  private constructor(
    readonly lab: Lab,
    readonly scripts: ClientScripts,
    /** `-F` file for both vmdesk and OpenSSH: the client's usual config plus `Ciphers aes128-gcm`, read by every hop (OpenSSH passes -F on to ProxyJump's inner ssh). */
    readonly sshConfigPath: string,
    private readonly services: ChildProcess,
  ) {}

  static async open(): Promise<BenchLab> {
    const lab = await labUp();
    let scripts: ClientScripts | undefined;
    let services: ChildProcess | undefined;
    try {
      scripts = await installClientScripts();
      const config = clientSshConfig().replace('Host *\n', `Host *\n  Ciphers ${BENCH_CIPHER}\n`);
      if (!config.includes(`Ciphers ${BENCH_CIPHER}`)) throw new Error('could not add Ciphers to the client ssh_config');
      const sshConfigPath = await lab.writeClientFile('bench/ssh_config', config);
      services = spawnDetached(
        ['ip', 'netns', 'exec', NAMESPACES.host, process.execPath, '--import', 'tsx', join(CHECKOUT, 'bench', 'services', 'sink-echo.ts'), String(SINK_PORT), String(ECHO_PORT)],
        { cwd: CHECKOUT, stdout: 'pipe', stderr: 'pipe' },
      );
      let out = '';
      services.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      services.stderr?.on('data', (b: Buffer) => (out += b.toString()));
      const child = services;
      await pollUntil(
        () => {
          if (child.exitCode !== null) throw new PollAbortError(`bench services exited: ${out}`);
          return out.includes('ready');
        },
        { timeoutMs: 20_000, intervalMs: 50, what: 'the sink and echo services in vmd-host' },
      );
      const b = new BenchLab(lab, scripts, sshConfigPath, services);
      b.serverBaseline = new Set(await b.serverPids());
      return b;
    } catch (e) {
      killGroup(services?.pid, 'SIGKILL');
      await scripts?.remove();
      await labDown();
      throw e;
    }
  }

  /** The libvirt lab with its guests running, brought up once for the benches that share it (cold, warm). */
  guests(): Promise<Hypervisor> {
    this.hypervisor ??= libvirtUp({ namespace: NAMESPACES.host });
    return this.hypervisor;
  }

  /** Takes the shared libvirt lab down (before a bench that brings up its own, and at the end). */
  async releaseGuests(): Promise<void> {
    if (!this.hypervisor) return;
    const up = this.hypervisor;
    this.hypervisor = undefined;
    await up.catch(() => {});
    await libvirtDown({ namespace: NAMESPACES.host });
  }

  async close(): Promise<void> {
    await this.releaseGuests().catch((e: unknown) => console.error(`libvirt lab teardown: ${String(e)}`));
    killGroup(this.services.pid, 'SIGTERM');
    await this.scripts.remove();
    await labDown();
  }

  /** Runs a measuring client as the client user in vmd-client and returns its JSON result. */
  async runScript<T>(name: string, args: readonly string[], timeoutMs: number): Promise<T> {
    const argv = ['node', this.scripts.path(name), ...args];
    const r = await this.lab.runClient(argv, { timeoutMs });
    if (r.code !== 0) throw new Error(describeRun(argv, r));
    return lastJsonLine<T>(r.stdout);
  }

  /** Starts a measuring client that prints `ready` first; resolves once it has. */
  async spawnScript(name: string, args: readonly string[]): Promise<ClientProcess> {
    const p = this.lab.spawnClient(['node', this.scripts.path(name), ...args]);
    let exited = false;
    void p.exited.then(() => (exited = true));
    await pollUntil(
      () => {
        if (p.stdout().includes('ready\n')) return true;
        if (exited) throw new PollAbortError(`${name} exited before it was ready: ${p.stderr()}`);
        return false;
      },
      { timeoutMs: 20_000, intervalMs: 10, what: `${name} to be ready` },
    );
    return p;
  }

  async vmdeskOk(args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
    const r = await this.lab.vmdesk(args, { timeoutMs });
    if (r.code !== 0) throw new Error(describeRun(['vmdesk', ...args], r));
    return r;
  }

  /** Processes of the client user in vmd-client. */
  async clientUserPids(): Promise<number[]> {
    const uid = this.lab.users.client.uid;
    const pids = await pidsIn(NAMESPACES.client);
    const uids = await Promise.all(pids.map(processUid));
    return pids.filter((_, i) => uids[i] === uid);
  }

  /** The client user's vmdesk agents (`vmdesk __agent`). */
  async agentPids(): Promise<number[]> {
    const pids = await this.clientUserPids();
    const argvs = await Promise.all(pids.map(processArgv));
    return pids.filter((_, i) => argvs[i]!.includes('__agent'));
  }

  /** The client user's OpenSSH clients (`ssh -L ...` and ProxyJump's `ssh -W ...`). */
  async sshClientPids(): Promise<number[]> {
    const pids = await this.clientUserPids();
    const names = await Promise.all(pids.map(processName));
    return pids.filter((_, i) => names[i] === 'ssh');
  }

  private async serverPids(): Promise<number[]> {
    return [...(await pidsIn(NAMESPACES.jump)), ...(await pidsIn(NAMESPACES.host))];
  }

  /**
   * The sshd sessions serving our clients: sshd processes on the jump host and the KVM host that were not there when
   * the bench lab came up (OpenSSH 9.8+ names them `sshd-session`). Only sshd counts: other work on this machine
   * may run things inside the lab's namespaces.
   */
  async serverSessionPids(): Promise<number[]> {
    const pids = (await this.serverPids()).filter((p) => !this.serverBaseline.has(p));
    const names = await Promise.all(pids.map(processName));
    return pids.filter((_, i) => names[i]?.startsWith('sshd'));
  }

  /** Stops every vmdesk tunnel and waits for the agent to exit (it does once idle), so the next forward starts a fresh agent. */
  async stopVmdesk(): Promise<void> {
    if ((await this.agentPids()).length > 0) await this.lab.vmdesk(['stop', '--all'], { timeoutMs: 20_000 });
    try {
      await pollUntil(async () => (await this.agentPids()).length === 0, { timeoutMs: 15_000, intervalMs: 100, what: 'the vmdesk agent to exit' });
    } catch {
      await killPids(await this.agentPids());
    }
  }

  /** Ends every OpenSSH client of the client user (the seed's `ssh -f` processes have no other handle). */
  async stopSshClients(): Promise<void> {
    await killPids(await this.sshClientPids());
  }

  /** Stops vmdesk and OpenSSH clients, then waits until no sshd session is left on either server. */
  async stopAll(): Promise<void> {
    await this.stopVmdesk();
    await this.stopSshClients();
    try {
      await pollUntil(async () => (await this.serverSessionPids()).length === 0, { timeoutMs: 20_000, intervalMs: 100, what: 'sshd sessions to end' });
    } catch {
      const left = await this.serverSessionPids();
      console.log(`  (killing ${left.length} server processes that outlived their clients)`);
      await killPids(left);
    }
    // Let TIME_WAIT sockets and freed memory settle before the next measurement.
    await sleep(300);
  }
}
