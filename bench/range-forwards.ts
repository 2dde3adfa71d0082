/**
 * Bench `range`: the seed's 5900..6000 forwards through the jump host, vmdesk
 * against the best OpenSSH can do with one process: `vmdesk forward -d
 * kvmhost 5900-6000` (a fresh agent each repetition) vs ONE `ssh -N -f` with
 * 101 `-L` options and ProxyJump. (The `setup` bench compares with the seed's
 * loop of 101 processes.) Time from spawning the command until all 101 local
 * ports accept, seen from inside vmd-client (bench/clients/wait-ports.ts);
 * afterwards a sample of ports must greet with their own number. Target from
 * issue 10: vmdesk <= 0.8x the peer.
 */
import { greetingAt } from '../test/lab/probes.js';
import type { BenchLab } from './bench-lab.js';
import { lastJsonLine } from './bench-lab.js';
import { checkOk, clientShell } from './first-rfb.js';
import { interleaved, type Tool } from './forwards.js';
import { describeLoad, loadBetween, loadSnapshot, type LoadDuring } from './machine-load.js';
import { compare, pairByRep, printComparison, type BenchResult } from './report.js';
import { fmt, median } from './stats.js';

const FIRST_PORT = 5900;
const LAST_PORT = 6000;
const PORTS = LAST_PORT - FIRST_PORT + 1;

interface RangeRun {
  tool: Tool;
  rep: number;
  setupMs: number;
  commandMs: number;
  load: LoadDuring;
}

async function runOnce(b: BenchLab, tool: Tool, rep: number): Promise<RangeRun> {
  await b.stopAll();
  const poller = await b.spawnScript('wait-ports', ['--first', String(FIRST_PORT), '--last', String(LAST_PORT), '--timeout-ms', '60000']);
  try {
    const before = await loadSnapshot();
    const t0 = Date.now();
    if (tool === 'vmdesk') {
      const r = await b.lab.vmdesk(['forward', '-d', 'kvmhost', `${FIRST_PORT}-${LAST_PORT}`], { timeoutMs: 60_000 });
      await checkOk('vmdesk forward -d', r, b);
    } else {
      const specs: string[] = [];
      for (let p = FIRST_PORT; p <= LAST_PORT; p++) specs.push(`-L ${p}:127.0.0.1:${p}`);
      await checkOk('ssh -L x101', await clientShell(b, `exec ssh -N -f ${specs.join(' ')} kvmhost`), b);
    }
    const commandMs = Date.now() - t0;
    const exit = await poller.exited;
    if (exit.code !== 0) throw new Error(`wait-ports failed: ${poller.stderr()}`);
    const load = loadBetween(before, await loadSnapshot());
    const { allAcceptedAtMs } = lastJsonLine<{ allAcceptedAtMs: number }>(poller.stdout());
    for (const port of [FIRST_PORT, 5950, LAST_PORT]) {
      const g = await greetingAt(b.lab, port);
      if (g !== `port ${port}`) throw new Error(`${tool}: port ${port} greeted ${JSON.stringify(g)}`);
    }
    return { tool, rep, setupMs: allAcceptedAtMs - t0, commandMs, load };
  } finally {
    await poller.stop();
    await b.stopAll();
  }
}

export async function benchRange(b: BenchLab, opts: { reps: number }): Promise<BenchResult> {
  const peerName = `one ssh -N -f with ${PORTS} -L (ProxyJump)`;
  for (const tool of interleaved(0)) await runOnce(b, tool, -1);
  const runs: RangeRun[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const tool of interleaved(rep)) {
      const r = await runOnce(b, tool, rep);
      console.log(`  ${r.tool.padEnd(7)} rep ${rep + 1}: all ${PORTS} ports accept after ${fmt(r.setupMs)} ms (command exited after ${fmt(r.commandMs)} ms; ${describeLoad(r.load)})`);
      runs.push(r);
    }
  }
  const med = (tool: Tool) => median(runs.filter((r) => r.tool === tool).map((r) => r.setupMs));
  const comparisons = [
    compare({ what: `time until ${PORTS} ports accept`, unit: 'ms', vmdesk: med('vmdesk'), peer: med('openssh'), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the time', target: { on: 'ratio', op: '<=', value: 0.8 }, pairs: pairByRep(runs, (r) => r.setupMs) }),
  ];
  comparisons.forEach(printComparison);
  return { name: 'range', title: `forward -d of ${FIRST_PORT}-${LAST_PORT} vs one OpenSSH process with ${PORTS} -L`, comparisons, details: { runs, reps: opts.reps }, notes: [] };
}
