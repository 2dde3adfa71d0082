/**
 * Bench `cold`: from nothing running (no agent, no ssh) to the first RFB
 * bytes of win2016's VNC console on a local port, through the jump host.
 * vmdesk: `vmdesk vnc -d kvmhost/win2016` (starts the agent, which holds the
 * forward; the console is looked up by name). Peer, the seed's first recipe:
 * `ssh -L PORT:localhost:VNCPORT -N -f kvmhost` (ProxyJump from the client's
 * ~/.ssh/config), with the VNC port known in advance. Both use the same local
 * port number (the VM's VNC port, as vmdesk picks 5900 + display). The time
 * runs from spawning the command to the first RFB bytes read by a poller that
 * keeps connecting to that port (bench/clients/wait-rfb.ts). Target from
 * issue 10: vmdesk <= 1.0x the peer.
 *
 * With BENCH_TRACE=1 one more run of each is made under `strace -f -ttt`
 * (execve, connect, bind, exit_group and the bundle's openat only, through
 * seccomp so the rest runs at full speed), and its steps are printed with
 * milliseconds since strace started the command: where the time goes.
 */
import type { BenchLab } from './bench-lab.js';
import { interleaved } from './forwards.js';
import { clientShell, describeRfbRun, timeFirstRfb, vmdeskVnc, vncPortOf, type RfbRun } from './first-rfb.js';
import { compare, pairByRep, printComparison, type BenchResult } from './report.js';
import { fmt, median } from './stats.js';

const VM = 'win2016';
const TRACE_FILE = 'bench-cold.strace';
const TRACED = 'execve,connect,bind,exit_group,openat';

/** The steps worth naming in an strace -f -ttt log, as `+ms pid what`. */
export function traceSteps(log: string, startedAtMs: number): string[] {
  const lines = log.split('\n').filter((l) => l.trim() !== '');
  const t0 = startedAtMs / 1000;
  const out: string[] = [];
  for (const l of lines) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const [, pid, ts, call] = m;
    const keep =
      /^execve\(/.test(call!) ||
      /^openat\(.*(vmdesk\.mjs|agent\.mjs|main\.js|agent\.js)"/.test(call!) ||
      (/^connect\(/.test(call!) && /sin_port=htons\(22\)|sun_path=".*agent\.sock"/.test(call!)) ||
      (/^bind\(/.test(call!) && /127\.0\.0\.1|agent\.sock/.test(call!)) ||
      /^exit_group\(/.test(call!);
    if (!keep || /ENOENT/.test(call!)) continue;
    out.push(`+${fmt((Number(ts) - t0) * 1000).padStart(6)} ms  ${pid!.padEnd(7)} ${call!.replace(/, \[?\/\* \d+ vars \*\/\]?/, '').slice(0, 140)}`);
  }
  return out;
}

export async function benchCold(b: BenchLab, opts: { reps: number }): Promise<BenchResult> {
  const hv = await b.guests();
  const port = await vncPortOf(hv, VM);
  const peerName = `ssh -L ${port}:localhost:${port} -N -f kvmhost (ProxyJump)`;
  /** The agent's log lines and its hops' `up` times (from `ps --json`), in ms since the command was spawned. */
  const agentTimeline = async (startedAtMs: number): Promise<string[]> => {
    const rel = (ms: number) => `+${fmt(ms - startedAtMs).padStart(6)} ms  agent   `;
    const out: string[] = [];
    const ps = await b.lab.vmdesk(['ps', '--json']);
    for (const t of JSON.parse(ps.stdout || '[]') as { hops: { label: string; since: number }[] }[]) for (const h of t.hops) out.push(`${rel(h.since)}hop ${h.label} up`);
    const log = await b.lab.runClient(['sh', '-c', 'cat "$XDG_RUNTIME_DIR/vmdesk/agent.log"']);
    for (const line of log.stdout.split('\n')) {
      const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (.*)$/.exec(line);
      if (m && Date.parse(m[1]!) >= startedAtMs) out.push(`${rel(Date.parse(m[1]!))}log: ${m[2]!.slice(0, 110)}`);
    }
    return out;
  };
  const runOnceWith = async (tool: RfbRun['tool'], wrap?: (line: string) => string, rep = -1, inspect?: (r: RfbRun) => Promise<void>): Promise<RfbRun> => {
    await b.stopAll();
    try {
      const r = await timeFirstRfb(b, tool, rep, port, () => {
        if (tool === 'vmdesk' && !wrap) return vmdeskVnc(b, VM, port);
        const line = tool === 'vmdesk' ? `vmdesk vnc -d kvmhost/${VM}` : `ssh -L ${port}:localhost:${port} -N -f kvmhost`;
        return clientShell(b, wrap ? wrap(line) : `exec ${line}`);
      });
      await inspect?.(r);
      return r;
    } finally {
      await b.stopAll();
    }
  };
  const runOnce = (tool: RfbRun['tool'], rep: number) => runOnceWith(tool, undefined, rep);
  // One untimed run of each: the page cache then holds node, the bundle, ssh and the keys for both.
  for (const tool of interleaved(0)) await runOnce(tool, -1);
  const runs: RfbRun[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const tool of interleaved(rep)) {
      const r = await runOnce(tool, rep);
      console.log(`  ${describeRfbRun(r)}`);
      runs.push(r);
    }
  }
  const traces: Record<string, string[]> = {};
  if (process.env.BENCH_TRACE === '1') {
    for (const tool of ['vmdesk', 'openssh'] as const) {
      // In the background: strace follows the agent (or ssh -f's child) and lives as long as it does.
      const traced = (line: string) => `(strace -f -ttt --seccomp-bpf -e trace=${TRACED} -o "$HOME/${TRACE_FILE}" ${line} &)`;
      let agentSteps: string[] = [];
      const r = await runOnceWith(tool, traced, -1, async (run) => {
        if (tool === 'vmdesk') agentSteps = await agentTimeline(run.startedAtMs);
      });
      traces[tool] = [...traceSteps(await b.lab.readClientFile(TRACE_FILE), r.startedAtMs), ...agentSteps];
      console.log(`  traced ${describeRfbRun(r)}`);
      for (const step of traces[tool]) console.log(`    ${step}`);
    }
  }
  const med = (tool: RfbRun['tool'], f: (r: RfbRun) => number) => median(runs.filter((r) => r.tool === tool).map(f));
  const comparisons = [
    compare({ what: `cold vnc -d ${VM} to first RFB bytes`, unit: 'ms', vmdesk: med('vmdesk', (r) => r.firstRfbMs), peer: med('openssh', (r) => r.firstRfbMs), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the time', target: { on: 'ratio', op: '<=', value: 1.0 }, pairs: pairByRep(runs, (r) => r.firstRfbMs) }),
    compare({ what: 'cold: until the port accepts', unit: 'ms', vmdesk: med('vmdesk', (r) => r.acceptMs), peer: med('openssh', (r) => r.acceptMs), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the time', pairs: pairByRep(runs, (r) => r.acceptMs) }),
  ];
  comparisons.forEach(printComparison);
  return { name: 'cold', title: `Cold start to ${VM}'s first RFB bytes`, comparisons, details: { runs, reps: opts.reps, vncPort: port, traces }, notes: [] };
}
