/**
 * Bench 2: one large stream over the two-hop chain. vmdesk's forward versus
 * `ssh -N -L` with ProxyJump, both on aes128-gcm@openssh.com for both hops
 * (checked, see cipher-check.ts). The client in vmd-client sends the bytes
 * to the local forward; the sink on the KVM host counts them and answers
 * with the count, which ends the clock.
 */
import type { BenchLab } from './bench-lab.js';
import { BENCH_CIPHER, SINK_PORT } from './bench-lab.js';
import { checkCiphers } from './cipher-check.js';
import { interleaved, openOpenSshForward, openVmdeskForward, type Forward, type Tool } from './forwards.js';
import { describeLoad } from './machine-load.js';
import { compare, pairByRep, printComparison, type BenchResult } from './report.js';
import { measureStream, type StreamResult } from './stream-runs.js';
import { MIB, fmt, median } from './stats.js';

const VMDESK_PORT = 7710;
const OPENSSH_PORT = 7720;

export async function benchSingleStream(b: BenchLab, opts: { bytes: number; reps: number }): Promise<BenchResult> {
  await b.stopAll();
  const ciphers = await checkCiphers(b);
  console.log(`  OpenSSH negotiated (ssh -v, both hops): ${ciphers.openssh.join('; ')}`);
  console.log(`  vmdesk offers ${ciphers.vmdeskOffer.slice(0, 3).join(',')},...; lab sshd picks ${ciphers.vmdeskNegotiated.jump} (jump), ${ciphers.vmdeskNegotiated.host} (host)`);
  const notes: string[] = [];
  if (ciphers.openssh.length !== 4 || ciphers.openssh.some((c) => !c.endsWith(BENCH_CIPHER))) notes.push(`OpenSSH did not use ${BENCH_CIPHER} on every hop: ${ciphers.openssh.join('; ')}`);
  if (ciphers.vmdeskNegotiated.jump !== BENCH_CIPHER || ciphers.vmdeskNegotiated.host !== BENCH_CIPHER) notes.push(`vmdesk would not negotiate ${BENCH_CIPHER}: ${JSON.stringify(ciphers.vmdeskNegotiated)}`);
  notes.forEach((n) => console.log(`  WARNING: ${n}`));

  const forwards: Record<Tool, Forward> = {
    vmdesk: await openVmdeskForward(b, VMDESK_PORT, SINK_PORT),
    openssh: await openOpenSshForward(b, OPENSSH_PORT, SINK_PORT),
  };
  const runs: (StreamResult & { rep: number })[] = [];
  const timeoutMs = Math.max(120_000, (opts.bytes / MIB) * 1000); // even 1 MiB/s finishes
  try {
    const warmBytes = Math.min(64 * MIB, opts.bytes);
    for (const tool of interleaved(0)) {
      const w = await measureStream(b, forwards[tool], { connections: 1, bytesEach: warmBytes, timeoutMs });
      console.log(`  warm-up ${tool}: ${fmt(w.mibPerS)} MiB/s`);
    }
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const tool of interleaved(rep)) {
        const r = await measureStream(b, forwards[tool], { connections: 1, bytesEach: opts.bytes, timeoutMs });
        runs.push({ ...r, rep });
        console.log(`  ${tool.padEnd(7)} rep ${rep + 1}: ${fmt(r.mibPerS)} MiB/s (${fmt(r.elapsedMs / 1000)} s); CPU: client ${fmt(r.clientCpuS)} s, sshd sessions ${fmt(r.serverCpuS)} s, sender ${fmt(r.senderCpuS)} s; ${describeLoad(r.load)}`);
      }
    }
  } finally {
    await forwards.vmdesk.stop();
    await forwards.openssh.stop();
    await b.stopAll();
  }
  const med = (tool: Tool, f: (r: StreamResult) => number) => median(runs.filter((r) => r.tool === tool).map(f));
  const gib = opts.bytes / 2 ** 30;
  const peerName = 'OpenSSH ssh -L (ProxyJump)';
  const comparisons = [
    compare({ what: `throughput, one ${fmt(opts.bytes / MIB)} MiB stream`, unit: 'MiB/s', vmdesk: med('vmdesk', (r) => r.mibPerS), peer: med('openssh', (r) => r.mibPerS), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x as fast', target: { on: 'ratio', op: '>=', value: 1.2 }, pairs: pairByRep(runs, (r) => r.mibPerS) }),
    compare({ what: 'client-side CPU per GiB', unit: 's', vmdesk: med('vmdesk', (r) => r.clientCpuS / gib), peer: med('openssh', (r) => r.clientCpuS / gib), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the CPU' }),
    compare({ what: 'sshd CPU per GiB (jump + host)', unit: 's', vmdesk: med('vmdesk', (r) => r.serverCpuS / gib), peer: med('openssh', (r) => r.serverCpuS / gib), peerName, ratioIs: 'vmdesk/peer', ratioWord: 'x the CPU' }),
  ];
  comparisons.forEach(printComparison);
  return { name: 'throughput', title: 'One stream over the two-hop chain', comparisons, details: { bytes: opts.bytes, reps: opts.reps, ciphers, runs }, notes };
}
