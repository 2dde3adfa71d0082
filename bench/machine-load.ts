/**
 * How busy the whole machine was during a measurement, from /proc/stat and
 * the kernel's CPU pressure (PSI): other work shares the two CPUs, and a run
 * that coincided with a burst of it shows here, so an outlier can be told
 * from a real difference.
 */
import { readFile } from 'node:fs/promises';

export interface LoadSnapshot {
  atMs: number;
  /** Jiffies spent in user, nice, system, irq, softirq and steal, summed over CPUs. */
  busyTicks: number;
  /** PSI `some` total: microseconds during which at least one runnable task waited for a CPU. */
  pressureUs: number;
}

export interface LoadDuring {
  /** Average number of CPUs busy (2 = both, all the time). */
  busyCpus: number;
  /** Share of the time some task waited for a CPU, in percent. */
  cpuPressurePct: number;
}

const TICKS_PER_S = 100;

export async function loadSnapshot(): Promise<LoadSnapshot> {
  const stat = await readFile('/proc/stat', 'utf8');
  const f = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // cpu  user nice system idle iowait irq softirq steal ...
  const busyTicks = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  const psi = await readFile('/proc/pressure/cpu', 'utf8').catch(() => '');
  const pressureUs = Number(/^some .*total=(\d+)/m.exec(psi)?.[1] ?? 0);
  return { atMs: Date.now(), busyTicks, pressureUs };
}

export function loadBetween(a: LoadSnapshot, b: LoadSnapshot): LoadDuring {
  const seconds = Math.max(0.001, (b.atMs - a.atMs) / 1000);
  return {
    busyCpus: (b.busyTicks - a.busyTicks) / TICKS_PER_S / seconds,
    cpuPressurePct: ((b.pressureUs - a.pressureUs) / 1e6 / seconds) * 100,
  };
}

export function describeLoad(l: LoadDuring): string {
  return `machine ${l.busyCpus.toFixed(2)} CPUs busy, CPU pressure ${l.cpuPressurePct.toFixed(0)}%`;
}
