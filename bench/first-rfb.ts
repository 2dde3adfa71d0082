/**
 * What the time-to-console benches (cold, warm) share: a VM's VNC port on the
 * KVM host, the client-side commands of both tools, and one timed run: a
 * poller inside vmd-client (bench/clients/wait-rfb.ts) is started first, then
 * the command; the time is from spawning the command to the first RFB bytes
 * the poller read through the new forward.
 */
import type { Hypervisor } from '../test/lab/libvirt/hypervisor.js';
import type { RunResult } from '../test/lab/lab.js';
import type { BenchLab } from './bench-lab.js';
import { describeRun, lastJsonLine } from './bench-lab.js';
import { describeLoad, loadBetween, loadSnapshot, type LoadDuring } from './machine-load.js';
import { fmt } from './stats.js';

/** A VM's VNC TCP port on the KVM host's loopback (autoport: it moves on every start). */
export async function vncPortOf(hv: Hypervisor, vm: string): Promise<number> {
  const r = await hv.virsh(['vncdisplay', '--domain', vm]);
  const m = /:(\d+)\s*$/.exec(r.stdout.trim());
  if (r.code !== 0 || !m) throw new Error(`virsh vncdisplay ${vm}: ${r.stdout}${r.stderr}`);
  return 5900 + Number(m[1]);
}

/** Runs a shell line as the client user with stdio on /dev/null (an `ssh -f` child keeps what it inherits). */
export function clientShell(b: BenchLab, line: string, timeoutMs = 60_000): Promise<RunResult> {
  return b.lab.runClient(['bash', '-c', `${line} </dev/null >/dev/null 2>>"$HOME/bench-console-ssh.log"`], { timeoutMs });
}

export async function checkOk(what: string, r: RunResult, b: BenchLab): Promise<void> {
  if (r.code === 0) return;
  const log = await b.lab.readClientFile('bench-console-ssh.log').catch(() => '');
  throw new Error(`${what}: ${describeRun([what], r)}\n--- ssh log\n${log}`);
}

export interface RfbRun {
  tool: 'vmdesk' | 'openssh';
  rep: number;
  /** Epoch ms when the command was spawned (the clock of strace -ttt, the agent's log and `ps --json`). */
  startedAtMs: number;
  /** Spawning the command to the first RFB bytes read through the forward. */
  firstRfbMs: number;
  /** Spawning the command to the forward's port first accepting. */
  acceptMs: number;
  /** Spawning the command to its exit. */
  commandMs: number;
  load: LoadDuring;
}

/** One timed run: `start` spawns the command and resolves with its result once it exits. */
export async function timeFirstRfb(b: BenchLab, tool: RfbRun['tool'], rep: number, localPort: number, start: () => Promise<RunResult>): Promise<RfbRun> {
  const poller = await b.spawnScript('wait-rfb', ['--port', String(localPort), '--timeout-ms', '60000']);
  try {
    const before = await loadSnapshot();
    const t0 = Date.now();
    const r = await start();
    const commandMs = Date.now() - t0;
    await checkOk(`${tool} command`, r, b);
    const exit = await poller.exited;
    if (exit.code !== 0) throw new Error(`wait-rfb failed: ${poller.stderr()}`);
    const load = loadBetween(before, await loadSnapshot());
    const out = lastJsonLine<{ firstByteAtMs: number; acceptedAtMs: number; greeting: string }>(poller.stdout());
    if (!out.greeting.startsWith('RFB 003.')) throw new Error(`not an RFB greeting on ${localPort}: ${JSON.stringify(out.greeting)}`);
    return { tool, rep, startedAtMs: t0, firstRfbMs: out.firstByteAtMs - t0, acceptMs: out.acceptedAtMs - t0, commandMs, load };
  } finally {
    await poller.stop();
  }
}

export function describeRfbRun(r: RfbRun): string {
  return `${r.tool.padEnd(7)} rep ${r.rep + 1}: first RFB bytes after ${fmt(r.firstRfbMs)} ms (port accepting after ${fmt(r.acceptMs)} ms, command exited after ${fmt(r.commandMs)} ms; ${describeLoad(r.load)})`;
}

/** vmdesk's `vnc -d` for a VM, checked to have put the forward on the expected local port. */
export async function vmdeskVnc(b: BenchLab, vm: string, localPort: number): Promise<RunResult> {
  const r = await b.lab.vmdesk(['vnc', '-d', '--json', `kvmhost/${vm}`], { timeoutMs: 60_000 });
  if (r.code === 0) {
    const port = (JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { forwards?: { localPort: number }[] }).forwards?.[0]?.localPort;
    if (port !== localPort) throw new Error(`vmdesk vnc -d ${vm} listened on ${port}, expected ${localPort} (something else holds the port?)`);
  }
  return r;
}
