/**
 * Bench 3: 64 connections at once through one forward over the two-hop
 * chain, each sending its share of the total. Aggregate throughput of vmdesk
 * versus one `ssh -N -L` (ProxyJump) process, and the memory each needs for
 * it: every run starts a fresh vmdesk agent (and a fresh ssh), so the
 * agent's VmHWM is this run's peak; VmRSS is also sampled every 100 ms.
 */
import type { BenchLab } from './bench-lab.js';
import { SINK_PORT } from './bench-lab.js';
import { interleaved, openForward, type Tool } from './forwards.js';
import { peakRssKiB, sampleRss } from './proc-stats.js';
import { describeLoad } from './machine-load.js';
import { compare, pairByRep, printComparison, type BenchResult } from './report.js';
import { measureStream, type StreamResult } from './stream-runs.js';
import { MIB, fmt, kibToMib, median } from './stats.js';

const PORTS: Record<Tool, number> = { vmdesk: 7730, openssh: 7740 };

interface ParallelRun extends StreamResult {
  rep: number;
  /** VmHWM of the client-side processes (summed over ssh and its ProxyJump child). */
  peakRssMiB: number;
  /** Highest summed VmRSS seen by sampling. */
  sampledMaxRssMiB: number;
  processes: number;
}

async function runOnce(b: BenchLab, tool: Tool, rep: number, opts: { connections: number; bytesEach: number }): Promise<ParallelRun> {
  await b.stopAll();
  const fwd = await openForward(tool, b, PORTS[tool], SINK_PORT);
  try {
    const pids = await fwd.clientPids();
    const sampler = sampleRss(fwd.clientPids, 100);
    const timeoutMs = Math.max(180_000, ((opts.connections * opts.bytesEach) / MIB) * 1000);
    let r: StreamResult;
    try {
      r = await measureStream(b, fwd, { connections: opts.connections, bytesEach: opts.bytesEach, timeoutMs });
    } catch (e) {
      await sampler.stop();
      throw e;
    }
    const sampledMaxKiB = await sampler.stop();
    return { ...r, rep, peakRssMiB: kibToMib(await peakRssKiB(pids)), sampledMaxRssMiB: kibToMib(sampledMaxKiB), processes: pids.length };
  } finally {
    await fwd.stop();
    await b.stopAll();
  }
}

export async function benchParallelStreams(b: BenchLab, opts: { connections: number; bytesEach: number; reps: number }): Promise<BenchResult> {
  const runs: ParallelRun[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const tool of interleaved(rep)) {
      const r = await runOnce(b, tool, rep, opts);
      runs.push(r);
      console.log(
        `  ${tool.padEnd(7)} rep ${rep + 1}: ${fmt(r.mibPerS)} MiB/s (${fmt(r.elapsedMs / 1000)} s); peak RSS ${fmt(r.peakRssMiB)} MiB (${r.processes} process${r.processes === 1 ? '' : 'es'}, sampled max ${fmt(r.sampledMaxRssMiB)} MiB); CPU: client ${fmt(r.clientCpuS)} s, sshd sessions ${fmt(r.serverCpuS)} s, sender ${fmt(r.senderCpuS)} s; ${describeLoad(r.load)}`,
      );
    }
  }
  const med = (tool: Tool, f: (r: ParallelRun) => number) => median(runs.filter((r) => r.tool === tool).map(f));
  const peerName = 'OpenSSH, one ssh -L (ProxyJump)';
  const total = opts.connections * opts.bytesEach;
  const comparisons = [
    compare({ what: `aggregate throughput, ${opts.connections} x ${fmt(opts.bytesEach / MIB)} MiB`, unit: 'MiB/s', vmdesk: med('vmdesk', (r) => r.mibPerS), peer: med('openssh', (r) => r.mibPerS), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x as fast', target: { on: 'ratio', op: '>=', value: 0.8 }, pairs: pairByRep(runs, (r) => r.mibPerS) }),
    compare({ what: 'peak RSS of the client side (VmHWM)', unit: 'MiB', vmdesk: med('vmdesk', (r) => r.peakRssMiB), peer: med('openssh', (r) => r.peakRssMiB), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the memory', target: { on: 'vmdesk', op: '<=', value: 200 } }),
    compare({ what: 'client-side CPU per GiB', unit: 's', vmdesk: med('vmdesk', (r) => r.clientCpuS / (total / 2 ** 30)), peer: med('openssh', (r) => r.clientCpuS / (total / 2 ** 30)), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the CPU' }),
  ];
  comparisons.forEach(printComparison);
  return { name: 'parallel', title: `${opts.connections} parallel streams through one forward`, comparisons, details: { ...opts, runs }, notes: [] };
}
