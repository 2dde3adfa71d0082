/**
 * A real RDP server for the lab: FreeRDP's shadow server (NLA against a SAM
 * file from `winpr-hash`) sharing an Xvfb display, run in the KVM host's
 * namespace on its bridge address. A lab guest started with `rdpRelay`
 * relays its port 3389 here, so the path stays real: client, jump, host, the
 * guest's IP by MAC. The display shows a known pattern (an `xev` window,
 * white, on the left half; a magenta `xmessage` on the right half) and `xev`
 * logs the keys that reach it. Debian: freerdp2-shadow-x11 winpr-utils xvfb
 * xauth xfonts-base x11-utils (xev, xmessage).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSync, closeSync } from 'node:fs';
import { killGroup, runChecked, runProcess, spawnDetached } from './exec.js';
import { pollUntil } from './poll.js';
import { fileExists } from './files.js';
import { GATEWAY, LAB_UUID_PREFIX, type LabDomain } from './libvirt/domains.js';

export const RDP_USER = 'rdpuser';
/** Where the shadow server listens in the KVM host's namespace: its bridge address. */
export const SHADOW_PORT = 13389;
/** A lab guest whose port 3389 relays to the shadow server (the lab's win2016 keeps its RDP-LAB banner: vms.test.ts checks it). */
export const RDP_LAB_GUEST: LabDomain = {
  name: 'win2022',
  uuid: `${LAB_UUID_PREFIX}00000000da01`,
  mac: '52:54:00:6c:da:01',
  graphics: 'loopback',
  isRunning: true,
  hostname: 'win2022',
  rdpRelay: `${GATEWAY}:${SHADOW_PORT}`,
};
export const RDP_PASSWORD = 'Rdp-lab-pw1';
export const RDP_WIDTH = 800;
export const RDP_HEIGHT = 600;
/** Right half of the display: `xmessage -bg` in this colour. */
export const PATTERN_RGB = [255, 0, 255] as const;

export interface RdpServer {
  /** `ADDR:PORT` the shadow server listens on. */
  address: string;
  /** The Xvfb display (`:N`): X clients such as xfreerdp can use it, from any namespace (its socket is a file). */
  display: string;
  /** What xev printed so far (KeyPress lines name the keysyms typed). */
  keyLog(): Promise<string>;
  stop(): Promise<void>;
}

/** A display number with no X server on it. */
async function freeDisplay(): Promise<number> {
  for (let n = 91; n < 120; n++) if (!(await fileExists(`/tmp/.X11-unix/X${n}`)) && !(await fileExists(`/tmp/.X${n}-lock`))) return n;
  throw new Error('no free X display between :91 and :119');
}

/** Starts Xvfb, the pattern, xev and freerdp-shadow-cli /sec:nla in namespace `netns` ('' for this one), listening on `bindAddress:port`. */
export async function startRdpServer(opts: { netns: string; bindAddress: string; port: number }): Promise<RdpServer> {
  const dir = await mkdtemp(join(tmpdir(), 'vmd-rdp-'));
  const display = await freeDisplay();
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir, DISPLAY: `:${display}` };
  const inNs = (argv: string[]) => (opts.netns === '' ? argv : ['ip', 'netns', 'exec', opts.netns, ...argv]);
  const groups: number[] = [];
  const start = (name: string, argv: string[]) => {
    const out = openSync(join(dir, `${name}.log`), 'w');
    const child = spawnDetached(inNs(argv), { env, cwd: dir, stdout: out, stderr: out });
    closeSync(out);
    if (child.pid !== undefined) groups.push(child.pid);
    child.unref();
  };
  const stop = async () => {
    for (const pid of groups.reverse()) killGroup(pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const pid of groups) killGroup(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const sam = await runChecked(['winpr-hash', '-u', RDP_USER, '-p', RDP_PASSWORD, '-f', 'sam']);
    await writeFile(join(dir, 'sam'), sam, { mode: 0o600 });
    start('xvfb', ['Xvfb', `:${display}`, '-screen', '0', `${RDP_WIDTH}x${RDP_HEIGHT}x24`, '-nolisten', 'tcp']);
    await pollUntil(() => fileExists(`/tmp/.X11-unix/X${display}`), { timeoutMs: 15_000, intervalMs: 100, what: `Xvfb :${display}` });
    const half = RDP_WIDTH / 2;
    const magenta = `#${PATTERN_RGB.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
    start('xmessage', ['xmessage', '-bg', magenta, '-fg', magenta, '-geometry', `${half}x${RDP_HEIGHT}+${half}+0`, 'pattern']);
    start('xev', ['xev', '-geometry', `${half}x${RDP_HEIGHT}+0+0`, '-event', 'keyboard']);
    start('shadow', ['freerdp-shadow-cli', `/bind-address:${opts.bindAddress}`, `/port:${opts.port}`, '/sec:nla', `/sam-file:${join(dir, 'sam')}`]);
    await pollUntil(
      async () => {
        const r = await runChecked(inNs(['ss', '-Htln', `sport = :${opts.port}`]));
        return r.includes(`:${opts.port}`);
      },
      { timeoutMs: 20_000, intervalMs: 200, what: `freerdp-shadow-cli on ${opts.bindAddress}:${opts.port}` },
    );
  } catch (err) {
    const logs = await Promise.all(['xvfb', 'shadow'].map((n) => readFile(join(dir, `${n}.log`), 'utf8').catch(() => '')));
    await stop();
    throw new Error(`the lab RDP server did not start: ${(err as Error).message}\n${logs.join('\n').slice(-2000)}`, { cause: err });
  }
  return {
    address: `${opts.bindAddress}:${opts.port}`,
    display: `:${display}`,
    keyLog: () => readFile(join(dir, 'xev.log'), 'utf8').catch(() => ''),
    stop,
  };
}

/** `xfreerdp /auth-only` from namespace `netns` (a real client's NLA check): true when the password was accepted. */
export async function xfreerdpAuthOnly(netns: string, address: string, user: string, password: string, display: string): Promise<boolean> {
  const r = await runProcess([...(netns === '' ? [] : ['ip', 'netns', 'exec', netns]), 'xfreerdp', '/auth-only', `/v:${address}`, `/u:${user}`, `/p:${password}`, '/cert:ignore'], {
    env: { PATH: '/usr/bin:/bin', HOME: tmpdir(), DISPLAY: display },
    timeoutMs: 60_000,
  });
  return r.code === 0;
}
