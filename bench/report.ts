/**
 * How benches report: every comparison puts vmdesk's number next to its
 * peer's from the same run, with the ratio the target is stated in,
 * and says whether the target is met. The summary table and the JSON file
 * are made from these.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fmt, median } from './stats.js';

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
  /**
   * Median of the per-repetition ratios (each vmdesk run against the peer's run next to it in time). Less moved
   * than the ratio of medians when a burst of other work on the machine hits one tool's runs more than the other's.
   */
  pairedRatio?: number;
  pairedRatios?: number[];
  /** `met`/`missed` when the ratio of medians and the paired ratio agree on the target, else `unclear`. */
  verdict?: 'met' | 'missed' | 'unclear';
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
  /** [vmdesk, peer] of each repetition, for the paired ratio. */
  pairs?: [number, number][];
}): Comparison {
  const ratioOf = (v: number, p: number) => (opts.ratioIs === 'vmdesk/peer' ? v / p : p / v);
  const ratio = ratioOf(opts.vmdesk, opts.peer);
  const c: Comparison = {
    what: opts.what,
    unit: opts.unit,
    vmdesk: opts.vmdesk,
    peer: opts.peer,
    peerName: opts.peerName,
    ratio,
    ratioMeaning: `${opts.ratioIs} (${opts.ratioWord})`,
  };
  if (opts.pairs && opts.pairs.length > 1) {
    c.pairedRatios = opts.pairs.map(([v, p]) => ratioOf(v, p));
    c.pairedRatio = median(c.pairedRatios);
  }
  if (opts.target) {
    const t = opts.target;
    const meets = (v: number) => (t.op === '>=' ? v >= t.value : v <= t.value);
    c.target = t;
    c.met = meets(t.on === 'ratio' ? ratio : opts.vmdesk);
    const pairedMet = t.on === 'ratio' && c.pairedRatio !== undefined ? meets(c.pairedRatio) : c.met;
    c.verdict = c.met && pairedMet ? 'met' : !c.met && !pairedMet ? 'missed' : 'unclear';
  }
  return c;
}

export function printComparison(c: Comparison): void {
  const verdicts = { met: 'MET', missed: 'MISSED', unclear: 'UNCLEAR (the ratio of medians and the paired ratio disagree)' };
  const target = c.target && c.verdict ? `  target ${targetText(c.target, c.unit)}: ${verdicts[c.verdict]}` : '';
  const paired = c.pairedRatios ? ` (per repetition: ${c.pairedRatios.map(fmt).join(', ')}; median ${fmt(c.pairedRatio!)})` : '';
  const vsPeer = Number.isFinite(c.peer) ? `, ${c.peerName} ${fmt(c.peer)} ${c.unit}, ${c.ratioMeaning} = ${fmt(c.ratio)}` : '';
  console.log(`  ${c.what}: vmdesk ${fmt(c.vmdesk)} ${c.unit}${vsPeer}${paired}${target}`);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function summaryTable(results: readonly BenchResult[]): string {
  const rows: string[][] = [['bench', 'measure', 'vmdesk', 'peer', 'ratio', 'paired', 'target', 'met']];
  for (const r of results) {
    for (const c of r.comparisons) {
      rows.push([
        r.name,
        c.what,
        `${fmt(c.vmdesk)} ${c.unit}`,
        Number.isFinite(c.peer) ? `${fmt(c.peer)} ${c.unit}` : '-',
        Number.isFinite(c.ratio) ? `${fmt(c.ratio)} (${c.ratioMeaning.split(' ')[0]})` : '-',
        c.pairedRatio !== undefined ? fmt(c.pairedRatio) : '-',
        c.target ? targetText(c.target, c.unit) : '-',
        c.verdict === 'met' ? 'yes' : c.verdict === 'missed' ? 'NO' : c.verdict === 'unclear' ? 'unclear' : '-',
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

/** [vmdesk, peer] per repetition, from runs tagged with their tool and repetition (the peer's tool is anything but 'vmdesk'). */
export function pairByRep<R extends { tool: string; rep: number }>(runs: readonly R[], f: (r: R) => number): [number, number][] {
  const pairs: [number, number][] = [];
  for (const v of runs.filter((r) => r.tool === 'vmdesk')) {
    const p = runs.find((r) => r.tool !== 'vmdesk' && r.rep === v.rep);
    if (p) pairs.push([f(v), f(p)]);
  }
  return pairs;
}
