/**
 * Bench `start`: `npm start -- --no-open` in the checkout, after a build (as
 * `npm ci` leaves it: its `prepare` builds), from spawning npm until the demo
 * prints its URL. No peer: the target is absolute (under 3 s). For
 * the breakdown the same is timed for `node bin/vmdesk demo --no-open` alone
 * (what npm start runs after its `build.mjs --if-stale` check). Runs outside
 * the lab: the demo is in-process servers on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { CHECKOUT } from '../test/lab/lab.js';
import { killGroup } from '../test/lab/exec.js';
import { describeLoad, loadBetween, loadSnapshot, type LoadDuring } from './machine-load.js';
import { compare, printComparison, type BenchResult } from './report.js';
import { fmt, median } from './stats.js';

const URL_LINE = /^http:\/\/127\.0\.0\.1:\d+\/#token=/m;

interface StartRun {
  what: 'npm start' | 'demo alone';
  rep: number;
  urlMs: number;
  load: LoadDuring;
}

/** Spawns argv in the checkout and resolves with the ms until stdout shows the URL; the process group is then killed. */
function timeUntilUrl(argv: readonly string[], timeoutMs = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { cwd: CHECKOUT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BROWSER: 'none' } });
    let out = '';
    let err = '';
    const timer = setTimeout(() => finish(new Error(`${argv.join(' ')}: no URL after ${timeoutMs} ms; stdout ${out} stderr ${err}`)), timeoutMs);
    const finish = (e?: Error, ms?: number) => {
      clearTimeout(timer);
      const settle = () => {
        if (e) reject(e);
        else resolve(ms!);
      };
      if (child.exitCode !== null || child.signalCode !== null) return settle();
      child.once('exit', settle);
      killGroup(child.pid, 'SIGTERM');
    };
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (URL_LINE.test(out)) finish(undefined, performance.now() - t0);
    });
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('exit', (code) => {
      if (!URL_LINE.test(out)) finish(new Error(`${argv.join(' ')} exited ${code} before printing its URL: ${err}`));
    });
  });
}

export async function benchStart(opts: { reps: number }): Promise<BenchResult> {
  // "After a build": what npm ci's prepare leaves; npm run bench has just built.
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  await timeUntilUrl([npm, 'start', '--', '--no-open']);
  const runs: StartRun[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const what of rep % 2 === 0 ? (['npm start', 'demo alone'] as const) : (['demo alone', 'npm start'] as const)) {
      const before = await loadSnapshot();
      const urlMs = await timeUntilUrl(what === 'npm start' ? [npm, 'start', '--', '--no-open'] : [process.execPath, 'bin/vmdesk', 'demo', '--no-open']);
      const r: StartRun = { what, rep, urlMs, load: loadBetween(before, await loadSnapshot()) };
      console.log(`  ${what.padEnd(10)} rep ${rep + 1}: URL after ${fmt(urlMs)} ms (${describeLoad(r.load)})`);
      runs.push(r);
    }
  }
  const med = (what: StartRun['what']) => median(runs.filter((r) => r.what === what).map((r) => r.urlMs / 1000));
  const comparisons = [
    compare({ what: 'npm start -- --no-open to its URL', unit: 's', vmdesk: med('npm start'), peer: Number.NaN, peerName: 'none (absolute target)', ratioIs: 'vmdesk/peer', ratioWord: 'absolute', target: { on: 'vmdesk', op: '<=', value: 3 } }),
    compare({ what: 'of which node bin/vmdesk demo --no-open alone', unit: 's', vmdesk: med('demo alone'), peer: Number.NaN, peerName: 'none', ratioIs: 'vmdesk/peer', ratioWord: 'absolute' }),
  ];
  comparisons.forEach(printComparison);
  return { name: 'start', title: 'npm start after a build, to the printed URL', comparisons, details: { runs, reps: opts.reps }, notes: [] };
}
