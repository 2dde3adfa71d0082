/**
 * A new TCP connection on a VM forward to the VM's first RFB byte, against a
 * plain port forward to the same endpoint, both in the same agent over the
 * same chain, samples alternating (issue #10: <= 1.1x). Run by hand, as root:
 *
 *   npm run build && node --import tsx bench/vm-connect.ts
 *
 * Prints each median and the ratio, and whether the VM forward's endpoints
 * were followed by events (`vmdesk ps --json`) while it ran.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { labDown, labUp } from '../test/lab/lab.js';
import { libvirtDown, libvirtUp } from '../test/lab/libvirt/hypervisor.js';
import { median, min, max, fmt } from './stats.js';

const SAMPLES = Number(process.env.BENCH_REPS ?? 30);

async function main(): Promise<void> {
  const lab = await labUp();
  try {
    const hv = await libvirtUp({ namespace: 'vmd-host' });
    try {
      const display = (await hv.virsh(['vncdisplay', '--domain', 'win2016'])).stdout.trim();
      const vncPort = 5900 + Number(/:(\d+)$/.exec(display)![1]);
      const vm = JSON.parse((await lab.vmdesk(['vnc', '-d', '--json', 'kvmhost/win2016'])).stdout) as { id: string; forwards: { localPort: number }[] };
      const plain = JSON.parse((await lab.vmdesk(['forward', '-d', '--json', 'kvmhost', `7300:127.0.0.1:${vncPort}`])).stdout) as { forwards: { localPort: number }[] };
      const modeOf = async () => ((JSON.parse((await lab.vmdesk(['ps', '--json'])).stdout) as { id: string; endpoints?: { mode: string } }[]).find((t) => t.id === vm.id)?.endpoints?.mode);
      for (let i = 0; i < 100 && (await modeOf()) !== 'events'; i++) await sleep(200);
      const firstByteMs = async (port: number): Promise<number> => {
        const t0 = performance.now();
        const sock = await lab.clientConnect('127.0.0.1', port);
        return new Promise((resolve, reject) => {
          sock.once('data', () => {
            const ms = performance.now() - t0;
            sock.destroy();
            resolve(ms);
          });
          sock.once('error', reject);
        });
      };
      const samples = { vm: [] as number[], plain: [] as number[] };
      // One untimed connection each: the chain's first channel, QEMU's first client.
      await firstByteMs(vm.forwards[0]!.localPort);
      await firstByteMs(plain.forwards[0]!.localPort);
      for (let i = 0; i < SAMPLES; i++) {
        const order = i % 2 === 0 ? (['vm', 'plain'] as const) : (['plain', 'vm'] as const);
        for (const k of order) samples[k].push(await firstByteMs(k === 'vm' ? vm.forwards[0]!.localPort : plain.forwards[0]!.localPort));
      }
      const mode = await modeOf();
      console.log(`# ${SAMPLES} samples each, alternating; VM forward endpoints: ${mode}`);
      for (const k of ['vm', 'plain'] as const) console.log(`${k.padEnd(6)} median ${fmt(median(samples[k]))} ms (min ${fmt(min(samples[k]))}, max ${fmt(max(samples[k]))})`);
      console.log(`ratio vm/plain ${(median(samples.vm) / median(samples.plain)).toFixed(2)}x (target <= 1.1x)`);
      await lab.vmdesk(['stop', '--all']);
    } finally {
      await libvirtDown({ namespace: 'vmd-host' });
    }
  } finally {
    await labDown();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
