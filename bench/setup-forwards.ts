/**
 * Bench 1: set up 101 forwards 5900..6000 to the KVM host through the jump
 * host. vmdesk: `vmdesk forward -d kvmhost 5900-6000` (one agent, one SSH
 * connection per hop). Peer: the seed's loop, run as written (sequentially,
 * `ssh -L $i:127.0.0.1:$i -N -f kvmhost`, ProxyJump from ~/.ssh/config).
 *
 * Time: from starting the command until every one of the 101 local ports
 * accepts a TCP connection, seen from inside vmd-client. Memory, once all
 * accept: every client process (the agent; or all the ssh clients and their
 * ProxyJump children) plus every sshd process serving them on jump and host
 * (sshd processes new in those namespaces since the lab came up), three
 * ways: summed RSS (shared pages counted per process), summed PSS (shared
 * pages split among all sharers machine-wide) and unique pages (each
 * physical page of the set once; see proc-stats.ts). Afterwards every port
 * is checked to greet with its number.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { greetingAt, mapLimit } from '../test/lab/probes.js';
import type { BenchLab } from './bench-lab.js';
import { describeRun, lastJsonLine } from './bench-lab.js';
import { interleaved, type Tool } from './forwards.js';
import { describeLoad, loadBetween, loadSnapshot, type LoadDuring } from './machine-load.js';
import { sumMemory, uniqueResidentKiB, type MemoryTotal } from './proc-stats.js';
import { compare, pairByRep, printComparison, type BenchResult } from './report.js';
import { fmt, kibToMib, median } from './stats.js';

const FIRST_PORT = 5900;
const LAST_PORT = 6000;
const PORTS = LAST_PORT - FIRST_PORT + 1;
const LOOP_LOG = 'bench-ssh-loop.log';

/** The seed's loop with the seed's own ssh command; failures are counted, their messages kept in a log in the client's home. */
const SEED_LOOP = [
  'fails=0',
  `for i in $(seq ${FIRST_PORT} ${LAST_PORT}); do`,
  `  ssh -L $i:127.0.0.1:$i -N -f kvmhost </dev/null >/dev/null 2>>"$HOME/${LOOP_LOG}" || fails=$((fails+1))`,
  'done',
  'echo "$fails"',
].join('\n');

interface SetupRun {
  tool: Tool;
  rep: number;
  /** Start of the command to the moment all 101 ports accepted. */
  setupMs: number;
  /** When the command itself returned (vmdesk -d returns once it listens; the loop after its last ssh -f). */
  commandMs: number;
  client: MemoryTotal & { uniqueKiB: number };
  server: MemoryTotal & { uniqueKiB: number };
  /** Client and server processes together, each physical page once. */
  uniqueKiB: number;
  greetingsOk: number;
  /** When the first port accepted (the first ssh of the loop; for vmdesk nearly the same as all). */
  firstAcceptMs: number;
  load: LoadDuring;
}

async function runOnce(b: BenchLab, tool: Tool, rep: number): Promise<SetupRun> {
  const poller = await b.spawnScript('wait-ports', ['--first', String(FIRST_PORT), '--last', String(LAST_PORT), '--timeout-ms', '240000']);
  try {
    const loadBefore = await loadSnapshot();
    const t0 = Date.now();
    let commandMs: number;
    if (tool === 'vmdesk') {
      const argv = ['forward', '-d', 'kvmhost', `${FIRST_PORT}-${LAST_PORT}`];
      const r = await b.lab.vmdesk(argv, { timeoutMs: 60_000 });
      commandMs = Date.now() - t0;
      if (r.code !== 0) throw new Error(describeRun(['vmdesk', ...argv], r));
    } else {
      const r = await b.lab.runClient(['bash', '-c', SEED_LOOP], { timeoutMs: 300_000 });
      commandMs = Date.now() - t0;
      if (r.code !== 0 || r.stdout.trim() !== '0') {
        const log = await b.lab.readClientFile(LOOP_LOG).catch(() => '');
        throw new Error(`the seed's loop: ${describeRun(['bash', '-c', '<seed loop>'], r)}\n--- ssh errors\n${log}`);
      }
    }
    // The poller gives up by itself after its own timeout.
    const exit = await poller.exited;
    if (exit.code !== 0) throw new Error(`wait-ports failed: ${poller.stderr()}`);
    const load = loadBetween(loadBefore, await loadSnapshot());
    const { allAcceptedAtMs, acceptedAtMs } = lastJsonLine<{ allAcceptedAtMs: number; acceptedAtMs: Record<string, number> }>(poller.stdout());
    // Let the last `ssh -f` finish forking and the probes' channels close before measuring memory.
    await sleep(1000);
    const clientPids = tool === 'vmdesk' ? await b.agentPids() : await b.sshClientPids();
    const serverPids = await b.serverSessionPids();
    const [client, server] = await Promise.all([sumMemory(clientPids), sumMemory(serverPids)]);
    const [clientUnique, serverUnique, uniqueKiB] = [await uniqueResidentKiB(clientPids), await uniqueResidentKiB(serverPids), await uniqueResidentKiB([...clientPids, ...serverPids])];
    const greetings = await mapLimit(Array.from({ length: PORTS }, (_, i) => FIRST_PORT + i), 8, async (port) => (await greetingAt(b.lab, port)) === `port ${port}`);
    return {
      tool,
      rep,
      setupMs: allAcceptedAtMs - t0,
      commandMs,
      client: { ...client, uniqueKiB: clientUnique },
      server: { ...server, uniqueKiB: serverUnique },
      uniqueKiB,
      firstAcceptMs: Math.min(...Object.values(acceptedAtMs)) - t0,
      load,
      greetingsOk: greetings.filter(Boolean).length };
  } finally {
    await poller.stop();
    await b.stopAll();
  }
}

function describe(r: SetupRun): string {
  const mem = (m: MemoryTotal & { uniqueKiB: number }) => `${m.processes} procs, RSS ${fmt(kibToMib(m.rssKiB))} / PSS ${fmt(kibToMib(m.pssKiB))} / unique ${fmt(kibToMib(m.uniqueKiB))} MiB`;
  return `${r.tool.padEnd(7)} rep ${r.rep + 1}: all ${PORTS} ports accept after ${fmt(r.setupMs / 1000)} s (first after ${fmt(r.firstAcceptMs / 1000)} s, command returned after ${fmt(r.commandMs / 1000)} s; ${describeLoad(r.load)}); client ${mem(r.client)}; servers ${mem(r.server)}; together unique ${fmt(kibToMib(r.uniqueKiB))} MiB; greetings ${r.greetingsOk}/${PORTS}`;
}

/** The floor under any Node.js agent: an idle `node` process of the client user, measured the same way. */
async function idleNodeMemory(b: BenchLab): Promise<{ rssMiB: number; pssMiB: number; uniqueMiB: number }> {
  const p = b.lab.spawnClient(['node', '-e', 'setInterval(() => {}, 1000)']);
  try {
    await sleep(1500);
    const m = await sumMemory([p.pid]);
    return { rssMiB: kibToMib(m.rssKiB), pssMiB: kibToMib(m.pssKiB), uniqueMiB: kibToMib(await uniqueResidentKiB([p.pid])) };
  } finally {
    await p.stop();
  }
}

export async function benchSetup(b: BenchLab, opts: { reps: number }): Promise<BenchResult> {
  const peerName = 'seed loop (101 x ssh -L -N -f)';
  await b.stopAll();
  const idleNode = await idleNodeMemory(b);
  console.log(`  for reference, an idle node process: RSS ${fmt(idleNode.rssMiB)} / PSS ${fmt(idleNode.pssMiB)} / unique ${fmt(idleNode.uniqueMiB)} MiB`);
  const runs: SetupRun[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const tool of interleaved(rep)) {
      const run = await runOnce(b, tool, rep);
      console.log(`  ${describe(run)}`);
      if (run.greetingsOk !== PORTS) throw new Error(`${tool}: only ${run.greetingsOk} of ${PORTS} ports reached their VNC-like listener`);
      runs.push(run);
    }
  }
  const med = (tool: Tool, f: (r: SetupRun) => number) => median(runs.filter((r) => r.tool === tool).map(f));
  const totalPss = (r: SetupRun) => kibToMib(r.client.pssKiB + r.server.pssKiB);
  const totalRss = (r: SetupRun) => kibToMib(r.client.rssKiB + r.server.rssKiB);
  const comparisons = [
    compare({ what: `time until ${PORTS} ports accept`, unit: 's', vmdesk: med('vmdesk', (r) => r.setupMs / 1000), peer: med('openssh', (r) => r.setupMs / 1000), peerName, ratioIs: 'peer/vmdesk', ratioWord: 'x faster', target: { on: 'ratio', op: '>=', value: 50 }, pairs: pairByRep(runs, (r) => r.setupMs / 1000) }),
    compare({ what: 'memory, client + sshd sessions (unique pages)', unit: 'MiB', vmdesk: med('vmdesk', (r) => kibToMib(r.uniqueKiB)), peer: med('openssh', (r) => kibToMib(r.uniqueKiB)), peerName, ratioIs: 'peer/vmdesk', ratioWord: 'x less', target: { on: 'ratio', op: '>=', value: 30 } }),
    compare({ what: 'memory, client + sshd sessions (summed PSS)', unit: 'MiB', vmdesk: med('vmdesk', totalPss), peer: med('openssh', totalPss), peerName, ratioIs: 'peer/vmdesk', ratioWord: 'x less', target: { on: 'ratio', op: '>=', value: 30 } }),
    compare({ what: 'memory, client + sshd sessions (summed RSS)', unit: 'MiB', vmdesk: med('vmdesk', totalRss), peer: med('openssh', totalRss), peerName, ratioIs: 'peer/vmdesk', ratioWord: 'x less', target: { on: 'ratio', op: '>=', value: 30 } }),
    compare({ what: 'memory, client side only (unique pages)', unit: 'MiB', vmdesk: med('vmdesk', (r) => kibToMib(r.client.uniqueKiB)), peer: med('openssh', (r) => kibToMib(r.client.uniqueKiB)), peerName, ratioIs: 'peer/vmdesk', ratioWord: 'x less' }),
    compare({ what: 'memory, sshd sessions only (unique pages)', unit: 'MiB', vmdesk: med('vmdesk', (r) => kibToMib(r.server.uniqueKiB)), peer: med('openssh', (r) => kibToMib(r.server.uniqueKiB)), peerName, ratioIs: 'peer/vmdesk', ratioWord: 'x less' }),
  ];
  comparisons.forEach(printComparison);
  return {
    name: 'setup',
    title: `Setup of ${PORTS} forwards ${FIRST_PORT}..${LAST_PORT} through the jump host`,
    comparisons,
    details: { runs, reps: opts.reps, idleNode },
    notes: [],
  };
}
