/**
 * Bench 4: latency of one byte there and back through the two-hop forward:
 * one connection to an echo on the KVM host (TCP_NODELAY on every socket we
 * own), 200 untimed round trips, then COUNT timed ones, one at a time.
 * Repetitions alternate between vmdesk and OpenSSH; the figure is the median
 * of the per-run medians.
 */
import type { BenchLab } from './bench-lab.js';
import { ECHO_PORT } from './bench-lab.js';
import { interleaved, openOpenSshForward, openVmdeskForward, type Forward, type Tool } from './forwards.js';
import { describeLoad, loadBetween, loadSnapshot, type LoadDuring } from './machine-load.js';
import { cpuSnapshot, cpuUsedBetween } from './proc-stats.js';
import { compare, pairByRep, printComparison, type BenchResult } from './report.js';
import { fmt, median } from './stats.js';

const PORTS: Record<Tool, number> = { vmdesk: 7750, openssh: 7760 };

interface RttOutput {
  count: number;
  warmup: number;
  medianUs: number;
  p10Us: number;
  p90Us: number;
  p99Us: number;
  minUs: number;
  maxUs: number;
  meanUs: number;
}

export async function benchRoundTrip(b: BenchLab, opts: { count: number; reps: number }): Promise<BenchResult> {
  await b.stopAll();
  const forwards: Record<Tool, Forward> = {
    vmdesk: await openVmdeskForward(b, PORTS.vmdesk, ECHO_PORT),
    openssh: await openOpenSshForward(b, PORTS.openssh, ECHO_PORT),
  };
  const runs: (RttOutput & { tool: Tool; rep: number; load: LoadDuring; clientCpuUsPerTrip: number; serverCpuUsPerTrip: number })[] = [];
  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const tool of interleaved(rep)) {
        const clientPids = await forwards[tool].clientPids();
        const serverPids = await b.serverSessionPids();
        const [clientBefore, serverBefore] = await Promise.all([cpuSnapshot(clientPids), cpuSnapshot(serverPids)]);
        const before = await loadSnapshot();
        const r = await b.runScript<RttOutput>('echo-rtt', ['--port', String(PORTS[tool]), '--count', String(opts.count), '--warmup', '200', '--timeout-ms', '120000'], 140_000);
        const load = loadBetween(before, await loadSnapshot());
        const [clientAfter, serverAfter] = await Promise.all([cpuSnapshot(clientPids), cpuSnapshot(serverPids)]);
        // Warm-up round trips included: the CPU counters cannot tell them apart.
        const trips = r.count + r.warmup;
        const clientCpuUsPerTrip = (cpuUsedBetween(clientBefore, clientAfter) / trips) * 1e6;
        const serverCpuUsPerTrip = (cpuUsedBetween(serverBefore, serverAfter) / trips) * 1e6;
        runs.push({ ...r, tool, rep, load, clientCpuUsPerTrip, serverCpuUsPerTrip });
        console.log(`  ${tool.padEnd(7)} rep ${rep + 1}: median ${fmt(r.medianUs)} us, p10 ${fmt(r.p10Us)} us, p90 ${fmt(r.p90Us)} us, p99 ${fmt(r.p99Us)} us (${r.count} round trips); CPU per round trip: client ${fmt(clientCpuUsPerTrip)} us, sshd sessions ${fmt(serverCpuUsPerTrip)} us; ${describeLoad(load)}`);
      }
    }
  } finally {
    await forwards.vmdesk.stop();
    await forwards.openssh.stop();
    await b.stopAll();
  }
  const med = (tool: Tool, f: (r: (typeof runs)[number]) => number) => median(runs.filter((r) => r.tool === tool).map(f));
  const peerName = 'OpenSSH ssh -L (ProxyJump)';
  const comparisons = [
    compare({ what: '1-byte round trip, median', unit: 'us', vmdesk: med('vmdesk', (r) => r.medianUs), peer: med('openssh', (r) => r.medianUs), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the latency', target: { on: 'ratio', op: '<=', value: 1.1 }, pairs: pairByRep(runs, (r) => r.medianUs) }),
    compare({ what: 'client-side CPU per round trip', unit: 'us', vmdesk: med('vmdesk', (r) => r.clientCpuUsPerTrip), peer: med('openssh', (r) => r.clientCpuUsPerTrip), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the CPU' }),
    compare({ what: '1-byte round trip, p99', unit: 'us', vmdesk: med('vmdesk', (r) => r.p99Us), peer: med('openssh', (r) => r.p99Us), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the latency' }),
  ];
  comparisons.forEach(printComparison);
  return { name: 'rtt', title: '1-byte round trip through the two-hop forward', comparisons, details: { ...opts, runs }, notes: [] };
}
