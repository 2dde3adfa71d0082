/**
 * Bench 5: `vmdesk ls kvmhost --json` against the floor, `ssh kvmhost virsh
 * list --all` (one connection, one virsh call), both as the client user
 * through the jump host, with 100 extra shut-off domains defined on the lab's
 * hypervisor (`bench-vm-000`.. with a VNC console and a NIC on the lab
 * network, next to the lab's own domains; guests are not started). Runs
 * alternate between the two; the figure is the median wall time of each, from
 * spawning the command in vmd-client to its exit. Target from the issue:
 * vmdesk <= 2x the floor. The extra domains are undefined afterwards.
 *
 * The floor names the URI (`virsh -c qemu:///system`): labuser has no
 * LIBVIRT_DEFAULT_URI, and plain `virsh` would open qemu:///session instead.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libvirtDown, libvirtUp, type Hypervisor } from '../test/lab/libvirt/hypervisor.js';
import type { BenchLab } from './bench-lab.js';
import { describeRun } from './bench-lab.js';
import { interleaved, type Tool } from './forwards.js';
import { compare, printComparison, type BenchResult } from './report.js';
import { fmt, max, median, min } from './stats.js';

const PREFIX = 'bench-vm-';

function domainXml(i: number, network: string): string {
  const n = String(i).padStart(3, '0');
  const mac = `52:54:00:be:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
  return `<domain type='qemu'>
  <name>${PREFIX}${n}</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <interface type='network'><mac address='${mac}'/><source network='${network}'/></interface>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>
`;
}

/** Defines COUNT domains in one virsh process (one command string, `;`-separated). */
async function defineExtra(hv: Hypervisor, count: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vmdesk-bench-ls-'));
  try {
    const files: string[] = [];
    for (let i = 0; i < count; i++) {
      const f = join(dir, `${i}.xml`);
      await writeFile(f, domainXml(i, hv.network.name));
      files.push(f);
    }
    const r = await hv.virsh([files.map((f) => `define ${f}`).join('; ')], { timeoutMs: 120_000 });
    if (r.code !== 0 || r.stderr.trim() !== '') throw new Error(describeRun(['virsh', 'define', '...'], r));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function undefineExtra(hv: Hypervisor): Promise<void> {
  const r = await hv.virsh(['list', '--all', '--name']);
  const names = r.stdout.split('\n').filter((n) => n.startsWith(PREFIX) && /^[a-z0-9-]+$/.test(n));
  if (names.length > 0) await hv.virsh([names.map((n) => `undefine --domain ${n}`).join('; ')], { timeoutMs: 120_000 });
}

interface LsRun {
  tool: Tool;
  rep: number;
  ms: number;
  vms?: number;
}

export async function benchLs(b: BenchLab, opts: { extraDomains: number; reps: number }): Promise<BenchResult> {
  await b.stopAll();
  const hv = await libvirtUp({ namespace: 'vmd-host', startGuests: false });
  const runs: LsRun[] = [];
  let total = 0;
  try {
    await undefineExtra(hv);
    await defineExtra(hv, opts.extraDomains);
    const listed = await hv.virsh(['list', '--all', '--uuid']);
    total = listed.stdout.split('\n').filter((l) => l.trim() !== '').length;
    console.log(`  ${total} domains defined (${opts.extraDomains} extra, shut off)`);
    const argv: Record<Tool, readonly string[]> = {
      vmdesk: ['ls', 'kvmhost', '--json'],
      openssh: ['-o', 'BatchMode=yes', 'kvmhost', 'virsh', '-c', hv.uri, 'list', '--all'],
    };
    // One untimed run each: page cache, libvirtd's first connection.
    for (const tool of ['vmdesk', 'openssh'] as const) await runOnce(b, tool, argv[tool], -1);
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const tool of interleaved(rep)) {
        const r = await runOnce(b, tool, argv[tool], rep);
        if (r.vms !== undefined && r.vms !== total) throw new Error(`vmdesk ls listed ${r.vms} VMs, virsh has ${total}`);
        runs.push(r);
        console.log(`  ${tool.padEnd(7)} rep ${rep + 1}: ${fmt(r.ms)} ms${r.vms !== undefined ? ` (${r.vms} VMs)` : ''}`);
      }
    }
  } finally {
    await undefineExtra(hv).catch((e: unknown) => console.error(`  could not undefine the extra domains: ${String(e)}`));
    await libvirtDown({ namespace: 'vmd-host' });
  }
  const ms = (tool: Tool) => runs.filter((r) => r.tool === tool).map((r) => r.ms);
  const comparisons = [
    compare({
      what: `ls, ${total} domains, median`,
      unit: 'ms',
      vmdesk: median(ms('vmdesk')),
      peer: median(ms('openssh')),
      peerName: 'ssh kvmhost virsh list --all',
      ratioIs: 'vmdesk/peer',
      ratioWord: 'x the time',
      target: { on: 'ratio', op: '<=', value: 2 },
    }),
  ];
  comparisons.forEach(printComparison);
  const spread = (tool: Tool) => `${tool} min ${fmt(min(ms(tool)))} ms, max ${fmt(max(ms(tool)))} ms`;
  return {
    name: 'ls',
    title: `vmdesk ls with ${total} domains vs one ssh + virsh list`,
    comparisons,
    details: { ...opts, domains: total, runs },
    notes: [`${spread('vmdesk')}; ${spread('openssh')}`],
  };
}

async function runOnce(b: BenchLab, tool: Tool, args: readonly string[], rep: number): Promise<LsRun> {
  const started = process.hrtime.bigint();
  const r = tool === 'vmdesk' ? await b.lab.vmdesk(args, { timeoutMs: 120_000 }) : await b.lab.ssh(args, { timeoutMs: 120_000 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.code !== 0) throw new Error(describeRun([tool === 'vmdesk' ? 'vmdesk' : 'ssh', ...args], r));
  if (tool === 'openssh') return { tool, rep, ms };
  const [host] = JSON.parse(r.stdout) as { vms?: unknown[] }[];
  return { tool, rep, ms, vms: host?.vms?.length };
}
