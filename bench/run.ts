/**
 * vmdesk's benchmarks against OpenSSH and the seed's shell recipes, in the
 * real lab (network namespaces, real sshd; needs root, see docs/lab.md).
 * Every bench measures vmdesk and its peer in the same run, interleaved, and
 * reports medians and the ratio against the target from the issue.
 *
 *   npm run bench                        all of them
 *   npm run bench -- cold warm           a subset: setup, range, cold, warm, start, throughput, parallel, rtt, ls, console, rdp
 *   BENCH_QUICK=1 npm run bench          smaller transfers and fewer repetitions
 *
 * Results: a summary table at the end, and JSON in bench/results/ (gitignored).
 * Method and latest numbers: docs/performance.md.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchLab } from './bench-lab.js';
import { describeMachine, machineInfo } from './machine-info.js';
import { benchCold } from './cold-console.js';
import { benchConsole } from './console.js';
import { benchLs } from './ls.js';
import { benchStart } from './npm-start.js';
import { benchParallelStreams } from './parallel-streams.js';
import { benchRange } from './range-forwards.js';
import { benchRdp } from './rdp.js';
import { summaryTable, writeResults, type BenchResult } from './report.js';
import { benchRoundTrip } from './round-trip.js';
import { benchSetup } from './setup-forwards.js';
import { benchSingleStream } from './single-stream.js';
import { benchWarm } from './warm-console.js';
import { MIB } from './stats.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const QUICK = process.env.BENCH_QUICK === '1';

/** Repetitions: BENCH_REPS overrides every bench's default. */
function reps(full: number, quick: number): number {
  const forced = Number(process.env.BENCH_REPS);
  if (Number.isInteger(forced) && forced > 0) return forced;
  return QUICK ? quick : full;
}

interface Bench {
  about: string;
  run: (b: BenchLab) => Promise<BenchResult>;
  /** Runs outside the lab (no lab is brought up when only such benches are chosen). */
  noLab?: boolean;
  /** Uses the libvirt lab's running guests, shared between such benches. */
  guests?: boolean;
}

const BENCHES: Record<string, Bench> = {
  setup: {
    about: '101 forwards 5900..6000 through the jump: vmdesk forward -d vs the seed loop of ssh -L -N -f',
    run: (b) => benchSetup(b, { reps: reps(3, 1) }),
  },
  range: {
    about: '101 forwards 5900..6000 through the jump: vmdesk forward -d vs ONE ssh -N -f with 101 -L',
    run: (b) => benchRange(b, { reps: reps(5, 3) }),
  },
  cold: {
    about: 'nothing running to the first RFB bytes of win2016: vmdesk vnc -d vs ssh -L ... -N -f (needs the libvirt lab)',
    run: (b) => benchCold(b, { reps: reps(5, 3) }),
    guests: true,
  },
  warm: {
    about: 'a second VM (rhel8) while a chain is held: vmdesk vnc -d vs ssh -O forward on a ControlMaster (libvirt lab)',
    run: (b) => benchWarm(b, { reps: reps(5, 3) }),
    guests: true,
  },
  start: {
    about: 'npm start -- --no-open after a build until it prints its URL (outside the lab)',
    run: () => benchStart({ reps: reps(5, 3) }),
    noLab: true,
  },
  throughput: {
    about: 'one 1 GiB stream (256 MiB with BENCH_QUICK=1) over the 2-hop chain: vmdesk vs ssh -L with ProxyJump',
    run: (b) => benchSingleStream(b, { bytes: QUICK ? 256 * MIB : 1024 * MIB, reps: reps(5, 3) }),
  },
  parallel: {
    about: '64 parallel streams through one forward (1 GiB total; 256 MiB quick): throughput and agent peak RSS',
    run: (b) => benchParallelStreams(b, { connections: 64, bytesEach: QUICK ? 4 * MIB : 16 * MIB, reps: reps(3, 2) }),
  },
  rtt: {
    about: '2000 sequential 1-byte echo round trips through the 2-hop forward',
    run: (b) => benchRoundTrip(b, { count: 2000, reps: reps(5, 3) }),
  },
  ls: {
    about: 'vmdesk ls kvmhost --json with 100 extra shut-off domains vs ssh kvmhost virsh list --all (needs the libvirt lab)',
    run: (b) => benchLs(b, { extraDomains: 100, reps: reps(7, 3) }),
  },
  console: {
    about: "browser console to win2016 (needs the libvirt lab, chromium; websockify + novnc for the peer): vmdesk ui's page vs websockify + noVNC via ssh -L, navigation to screen painted; keystroke to echo vs a Node RFB client on a vmdesk forward",
    run: (b) => benchConsole(b, { reps: reps(10, 5), keyReps: reps(20, 10) }),
  },
  rdp: {
    about: "RDP in the browser to the lab's RDP guest (FreeRDP shadow server, NLA; needs the libvirt lab, chromium, freerdp2-shadow-x11): navigation to first remote frame, first and cached open, beside xfreerdp /auth-only through a vmdesk rdp -d forward",
    run: (b) => benchRdp(b, { reps: reps(10, 3) }),
  },
};

async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log('usage: npm run bench -- [bench...]   (env BENCH_QUICK=1 for a quick run, BENCH_REPS=N to force repetitions)');
    for (const [name, b] of Object.entries(BENCHES)) console.log(`  ${name.padEnd(11)} ${b.about}`);
    return 0;
  }
  const unknown = argv.filter((a) => !(a in BENCHES));
  if (unknown.length > 0) {
    console.error(`unknown bench ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}`);
    return 2;
  }
  const names = argv.length > 0 ? Object.keys(BENCHES).filter((n) => argv.includes(n)) : Object.keys(BENCHES);
  const checkout = join(BENCH_DIR, '..');
  const machine = await machineInfo(checkout);
  console.log('# vmdesk benchmarks');
  for (const line of describeMachine(machine)) console.log(`# ${line}`);
  console.log(`# benches: ${names.join(', ')}${QUICK ? ' (BENCH_QUICK=1)' : ''}`);

  const t0 = Date.now();
  const needsLab = names.some((n) => !BENCHES[n]!.noLab);
  const lab = needsLab ? await BenchLab.open() : undefined;
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    console.error('\ninterrupted: tearing the lab down');
    void (lab?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: BenchResult[] = [];
  const failures: { name: string; error: string }[] = [];
  try {
    for (const name of names) {
      console.log(`\n## ${name}: ${BENCHES[name]!.about}`);
      const started = Date.now();
      try {
        // ls and console bring up (and down) their own libvirt lab.
        if (!BENCHES[name]!.guests && !BENCHES[name]!.noLab) await lab!.releaseGuests();
        const r = await BENCHES[name]!.run(lab!);
        results.push(r);
        console.log(`  (${Math.round((Date.now() - started) / 1000)} s)`);
      } catch (e) {
        const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
        failures.push({ name, error });
        console.error(`  ${name} FAILED: ${error}`);
        await lab?.stopAll().catch(() => {});
      }
    }
  } finally {
    if (!interrupted) await lab?.close();
  }

  console.log(`\n## summary (medians; ${Math.round((Date.now() - t0) / 1000)} s in all)\n`);
  if (results.length > 0) console.log(summaryTable(results));
  for (const r of results) for (const n of r.notes) console.log(`note (${r.name}): ${n}`);
  for (const f of failures) console.log(`FAILED: ${f.name}`);
  const file = await writeResults(join(BENCH_DIR, 'results'), { startedAt: machine.date, quick: QUICK, machine, results, failures });
  console.log(`\nresults: ${file}`);
  return failures.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
