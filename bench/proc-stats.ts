/**
 * What the bench reads from /proc about the processes it measures: memory
 * (RSS, PSS, peak RSS), CPU time, owner, parent and command line. Processes
 * may exit while we look; every reader returns undefined for a gone pid.
 */
import { open, readFile, readdir, type FileHandle } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';

/** Kernel clock ticks per second, for utime/stime in /proc/PID/stat. */
const CLOCK_TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcessMemory {
  /** VmRSS: resident pages, shared ones counted in full for every process that maps them. */
  rssKiB: number;
  /** Pss (smaps_rollup): shared pages split between the processes that share them, so a sum over processes is fair. */
  pssKiB: number;
  /** VmHWM: the highest RSS this process ever had. */
  hwmKiB: number;
}

function kib(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export async function readMemory(pid: number): Promise<ProcessMemory | undefined> {
  try {
    const [status, rollup] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '')]);
    return { rssKiB: kib(status, 'VmRSS'), pssKiB: kib(rollup, 'Pss'), hwmKiB: kib(status, 'VmHWM') };
  } catch {
    return undefined;
  }
}

export interface MemoryTotal {
  processes: number;
  rssKiB: number;
  pssKiB: number;
}

/** Sums memory over processes (those gone meanwhile are skipped and not counted). */
export async function sumMemory(pids: readonly number[]): Promise<MemoryTotal> {
  const total: MemoryTotal = { processes: 0, rssKiB: 0, pssKiB: 0 };
  for (const m of await Promise.all(pids.map(readMemory))) {
    if (!m) continue;
    total.processes++;
    total.rssKiB += m.rssKiB;
    total.pssKiB += m.pssKiB;
  }
  return total;
}

interface Stat {
  ppid: number;
  cpuSeconds: number;
}

async function readStat(pid: number): Promise<Stat | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ..." - comm may hold spaces and parentheses; fields resume after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // After comm: [0]=state [1]=ppid ... [11]=utime [12]=stime (fields 14 and 15 of proc(5)).
    return { ppid: Number(f[1]), cpuSeconds: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S };
  } catch {
    return undefined;
  }
}

/** User plus system CPU time of each process, summed (gone processes count 0). */
export async function cpuSeconds(pids: readonly number[]): Promise<number> {
  const stats = await Promise.all(pids.map(readStat));
  return stats.reduce((sum, s) => sum + (s?.cpuSeconds ?? 0), 0);
}

/** CPU seconds per pid, to take differences over a run. */
export async function cpuSnapshot(pids: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  const stats = await Promise.all(pids.map(readStat));
  pids.forEach((pid, i) => out.set(pid, stats[i]?.cpuSeconds ?? 0));
  return out;
}

/** CPU seconds used between two snapshots by the processes in `after` (a process new since `before` counts from 0). */
export function cpuUsedBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += Math.max(0, s - (before.get(pid) ?? 0));
  return sum;
}

export async function processUid(pid: number): Promise<number | undefined> {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** argv of a process (empty once it is gone). */
export async function processArgv(pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Every process whose parent chain leads to `pid` (children, grandchildren...), not `pid` itself. */
export async function descendantsOf(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = await readStat(Number(entry));
    if (st) parents.set(Number(entry), st.ppid);
  }
  const out: number[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const [child, parent] of parents) if (frontier.includes(parent)) next.push(child);
    out.push(...next);
    frontier = next;
  }
  return out;
}

/** Samples the summed VmRSS of `pids()` every `intervalMs` until stopped; resolves with the highest sum seen (KiB). */
export function sampleRss(pids: () => Promise<number[]>, intervalMs = 100): { stop(): Promise<number> } {
  let maxKiB = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const total = await sumMemory(await pids());
      maxKiB = Math.max(maxKiB, total.rssKiB);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return maxKiB;
    },
  };
}

/** Summed VmHWM (each process's own peak RSS) of the processes still alive. */
export async function peakRssKiB(pids: readonly number[]): Promise<number> {
  const ms = await Promise.all(pids.map(readMemory));
  return ms.reduce((sum, m) => sum + (m?.hwmKiB ?? 0), 0);
}

const PAGE_KIB = 4;
/** User space ends below 2^47 on x86-64 (vsyscall above it has no pagemap entries worth reading). */
const USER_SPACE_END = 2 ** 47;

/**
 * Resident memory of a set of processes with every physical page counted
 * once, however many of them map it (read from /proc/PID/pagemap; needs
 * root for the frame numbers). Unlike summed RSS it does not count a shared
 * library once per process, and unlike summed PSS it does not depend on
 * how many unrelated processes elsewhere on the machine share a page
 * (every node process shares node's own text with the agent).
 */
export async function uniqueResidentKiB(pids: readonly number[]): Promise<number> {
  const frames = new Set<number>();
  for (const pid of pids) {
    let maps: string;
    let fh: FileHandle;
    try {
      maps = await readFile(`/proc/${pid}/maps`, 'utf8');
      fh = await open(`/proc/${pid}/pagemap`, 'r');
    } catch {
      continue; // exited meanwhile
    }
    try {
      for (const line of maps.split('\n')) {
        const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4})/.exec(line);
        if (!m || m[3]!.startsWith('---')) continue;
        const start = Number.parseInt(m[1]!, 16);
        const end = Number.parseInt(m[2]!, 16);
        if (end > USER_SPACE_END) continue;
        const pages = (end - start) / 4096;
        // 64 Ki pages (256 MiB of address space) per read keeps the buffer at 512 KiB.
        for (let first = 0; first < pages; first += 65_536) {
          const n = Math.min(65_536, pages - first);
          const buf = Buffer.alloc(n * 8);
          const { bytesRead } = await fh.read(buf, 0, buf.length, ((start / 4096) + first) * 8);
          for (let off = 0; off + 8 <= bytesRead; off += 8) {
            const entry = buf.readBigUInt64LE(off);
            // Bit 63: present in RAM; bits 0-54: page frame number (zero without CAP_SYS_ADMIN).
            if ((entry >> 63n) === 1n) {
              const pfn = Number(entry & 0x7f_ffff_ffff_ffffn);
              if (pfn !== 0) frames.add(pfn);
            }
          }
        }
      }
    } finally {
      await fh.close();
    }
  }
  return frames.size * PAGE_KIB;
}
