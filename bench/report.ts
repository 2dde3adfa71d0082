/**
 * How benches report: every comparison puts vmdesk's number next to its
 * peer's from the same run, with the ratio the target is stated in,
 * and says whether the target is met. The summary table and the JSON file
 * are made from these.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fmt } from './stats.js';

/** A target on the ratio (`ratio >= 50`) or on vmdesk's own number (`vmdesk <= 200 MiB`). */
export interface Target {
  on: 'ratio' | 'vmdesk';
  op: '>=' | '<=';
  value: number;
}

export interface Comparison {
  what: string;
  unit: string;
  vmdesk: number;
  peer: number;
  /** e.g. `seed loop (101 x ssh -L -f)` or `OpenSSH ssh -L (ProxyJump)`. */
  peerName: string;
  ratio: number;
  /** How the ratio is formed, in words: `peer / vmdesk (x faster)`. */
  ratioMeaning: string;
  target?: Target;
  met?: boolean;
}

export interface BenchResult {
  name: string;
  title: string;
  comparisons: Comparison[];
  /** Per-run raw numbers, checks and anything else worth keeping in the JSON. */
  details: Record<string, unknown>;
  notes: string[];
}

export function targetText(t: Target, unit: string): string {
  return t.on === 'ratio' ? `ratio ${t.op} ${t.value}` : `vmdesk ${t.op} ${t.value} ${unit}`;
}

/** Builds a comparison: ratio = vmdesk/peer, or peer/vmdesk when `ratioIs` says so; target checked. */
export function compare(opts: {
  what: string;
  unit: string;
  vmdesk: number;
  peer: number;
  peerName: string;
  ratioIs: 'vmdesk/peer' | 'peer/vmdesk';
  ratioWord: string;
  target?: Target;
}): Comparison {
  const ratio = opts.ratioIs === 'vmdesk/peer' ? opts.vmdesk / opts.peer : opts.peer / opts.vmdesk;
  const c: Comparison = {
    what: opts.what,
    unit: opts.unit,
    vmdesk: opts.vmdesk,
    peer: opts.peer,
    peerName: opts.peerName,
    ratio,
    ratioMeaning: `${opts.ratioIs} (${opts.ratioWord})`,
  };
  if (opts.target) {
    const t = opts.target;
    const v = t.on === 'ratio' ? ratio : opts.vmdesk;
    c.target = t;
    c.met = t.op === '>=' ? v >= t.value : v <= t.value;
  }
  return c;
}

export function printComparison(c: Comparison): void {
  const target = c.target ? `  target ${targetText(c.target, c.unit)}: ${c.met ? 'MET' : 'MISSED'}` : '';
  console.log(`  ${c.what}: vmdesk ${fmt(c.vmdesk)} ${c.unit}, ${c.peerName} ${fmt(c.peer)} ${c.unit}, ${c.ratioMeaning} = ${fmt(c.ratio)}${target}`);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function summaryTable(results: readonly BenchResult[]): string {
  const rows: string[][] = [['bench', 'measure', 'vmdesk', 'peer', 'ratio', 'target', 'met']];
  for (const r of results) {
    for (const c of r.comparisons) {
      rows.push([
        r.name,
        c.what,
        `${fmt(c.vmdesk)} ${c.unit}`,
        `${fmt(c.peer)} ${c.unit}`,
        `${fmt(c.ratio)} (${c.ratioMeaning.split(' ')[0]})`,
        c.target ? targetText(c.target, c.unit) : '-',
        c.target ? (c.met ? 'yes' : 'NO') : '-',
      ]);
    }
  }
  return table(rows);
}

/** Writes everything to bench/results/<timestamp>.json (gitignored) and returns the path. */
export async function writeResults(dir: string, payload: { startedAt: string } & Record<string, unknown>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${payload.startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(payload, null, 2)}\n`);
  return file;
}
