/** `vmdesk ui`: the dashboard and browser consoles, served from this process until Ctrl-C. */
import { loadConfig } from '../../config/config.js';
import { HostSessions, startUiServer, type UiHost } from '../../server/index.js';
import { planHops } from '../../ssh/hop-plan.js';
import type { ChainOptions } from '../../ssh/chain.js';
import { openBrowser } from '../browser.js';
import { choosePrompter } from '../prompters.js';
import { hostTarget, type HostOptions, type HostTarget } from '../vm-context.js';
import { isLoopback } from '../../libvirt/domain-xml.js';
import { parsePortOption } from './forward.js';

export interface UiOptions extends HostOptions {
  port?: string;
  bind?: string;
  /** False with --no-open. */
  open?: boolean;
  json?: boolean;
}

export interface ServeOptions {
  hosts: UiHost[];
  /** The page to open first (`/` or `/console?...`). */
  path: string;
  isDemo?: boolean;
  chain: ChainOptions;
  ui: UiOptions;
  stopSignal: Promise<string>;
  /** Printed under the URL (text mode). */
  banner?: string;
  onClose?: () => Promise<void>;
}

/** A host of the config or the command line, planned with ssh_config when first used. */
export function uiHost(t: HostTarget): UiHost {
  return {
    name: t.name,
    dest: t.dest,
    uri: t.uri,
    planHops: () => planHops(t.dest, { ...(t.sshConfig ? { configFile: t.sshConfig } : {}), ...(t.jump ? { jump: t.jump } : {}) }),
  };
}

/** Chain options at the CLI: prompts on this terminal (or SSH_ASKPASS). */
export function cliChainOptions(opts: HostOptions): ChainOptions {
  const prompter = choosePrompter();
  return { ...(prompter ? { prompter } : {}), acceptNewHostKey: opts.acceptNewHostKey ?? false };
}

/** Serve the UI until a signal: print the URL (and open a browser unless --no-open or there is no display). */
export async function serveUi(s: ServeOptions): Promise<number> {
  const bind = s.ui.bind ?? '127.0.0.1';
  if (!isLoopback(bind)) {
    process.stderr.write(`vmdesk: warning: serving the UI on ${bind}, not loopback: anyone who can reach this machine and learns the token can open your consoles, over plain HTTP\n`);
  }
  const sessions = new HostSessions(s.hosts, s.chain);
  const log = (line: string) => process.stderr.write(`vmdesk: ${line}\n`);
  let server;
  try {
    server = await startUiServer({ sessions, bindAddress: bind, port: parsePortOption(s.ui.port) ?? 0, isDemo: s.isDemo ?? false, log });
  } catch (err) {
    await sessions.close();
    throw err;
  }
  const url = server.url(s.path);
  const opened = s.ui.open === false ? false : await openBrowser(url);
  if (s.ui.json) {
    process.stdout.write(`${JSON.stringify({ url, port: server.port, opened, demo: s.isDemo ?? false, hosts: s.hosts.map((h) => h.name) })}\n`);
  } else {
    process.stdout.write(`${url}\n`);
    if (s.banner) process.stdout.write(`${s.banner}\n`);
    process.stdout.write(
      opened
        ? 'Opened in your browser. Ctrl-C stops the server.\n'
        : s.ui.open === false
          ? 'Open the URL above in a browser (it carries the access token). Ctrl-C stops the server.\n'
          : 'No browser could be opened here (no display): open the URL above in a browser. Ctrl-C stops the server.\n',
    );
  }
  const why = await s.stopSignal;
  await server.close();
  await sessions.close();
  await s.onClose?.();
  return why === 'interrupted' ? 130 : 0;
}

/** `vmdesk ui [DEST...]` */
export async function uiCommand(dests: string[], opts: UiOptions, ctx: { stopSignal: Promise<string> }): Promise<number> {
  const cfg = loadConfig(opts.config);
  const names = [...new Set([...cfg.hosts.map((h) => h.name), ...dests])];
  const hosts = names.map((n) => uiHost(hostTarget(n, opts)));
  return serveUi({ hosts, path: '/', chain: cliChainOptions(opts), ui: opts, stopSignal: ctx.stopSignal });
}
