/**
 * The CLI edge: parses argv with commander, runs one command, maps every
 * error to a one-line message and an exit code in one place. The only
 * module that calls process.exit.
 */
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { VmdeskError } from '../errors.js';
import { ensureRuntimeDir } from '../daemon/runtime-dir.js';
import { AgentClient } from '../daemon/agent-client.js';
import type { WarmParams } from '../daemon/agent.js';
import { IS_BUNDLE, VERSION } from '../daemon/version.js';
import type { ForwardOptions } from './commands/forward.js';
import type { AuditOptions, EditOptions, PinIpOptions } from './commands/audit.js';
import type { UiOptions } from './commands/ui.js';
import type { VmCommandOptions } from './commands/vm.js';
import { EXIT } from './exit-codes.js';
import { reportError } from './output.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

// Commands are loaded when run: `vmdesk ps` or `forward -d` need neither the SSH library nor the XML parser.
const forwardCmd = () => import('./commands/forward.js');
const psCmd = () => import('./commands/ps.js');
const vmCmd = () => import('./commands/vm.js');

/** What the agent needs to warm a chain to the host of HOST/VM (undefined for a bare VM name: which host is not known yet). */
async function warmTarget(ref: string, opts: VmCommandOptions): Promise<WarmParams | undefined> {
  const { splitVmRef, hostTarget } = await import('./vm-context.js');
  const { host } = splitVmRef(ref);
  if (!host) return undefined;
  const t = hostTarget(host, opts);
  return { dest: t.dest, ...(t.sshConfig ? { configFile: t.sshConfig } : {}), ...(t.jump ? { jump: t.jump } : {}), ...(process.env.SSH_AUTH_SOCK ? { agentSocket: process.env.SSH_AUTH_SOCK } : {}) };
}

function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('interrupted'));
    process.once('SIGTERM', () => resolve('terminated'));
    process.once('SIGHUP', () => resolve('hang-up'));
  });
}

function buildProgram(run: (p: Promise<number>) => void): Command {
  const program = new Command();
  program
    .name('vmdesk')
    .description('Reach the desktops of KVM/libvirt VMs behind firewalls and SSH jump hosts.')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  // The agent moves bulk data: a larger young generation means far fewer scavenges per GiB
  // (measured with the packet-size fix: the agent's CPU per GiB fell 24%, docs/performance.md).
  // From the bundle the agent is its own bundle (dist/agent.mjs, no CLI code to load); `__agent` marks it in `ps`.
  const agentEntry = IS_BUNDLE ? [fileURLToPath(new URL('./agent.mjs', import.meta.url)), '__agent'] : [process.argv[1]!, '__agent'];
  const agentCommand = [process.execPath, '--max-semi-space-size=32', ...process.execArgv, ...agentEntry];
  // A detached tunnel ends in the agent: start it now, so that its start-up overlaps with the command's own work.
  // For HOST/VM the agent also gets HOST's ssh destination, to connect there while the CLI looks the VM up.
  const prestartAgent = (detach: boolean | undefined, vmRef?: { ref: string; opts: VmCommandOptions }): void => {
    if (!detach) return;
    const warm = vmRef ? () => warmTarget(vmRef.ref, vmRef.opts) : undefined;
    AgentClient.prestart({ agentCommand, onNotice: (l) => process.stderr.write(`vmdesk: ${l}\n`) }, warm);
  };

  program
    .command('forward')
    .summary('forward local ports to a host through SSH hops (like ssh -L, one connection)')
    .description(
      'Forward local ports to DEST (an ssh_config alias or [user@]host[:port]) through its SSH hops.\n' +
        'All forwards share one SSH connection per hop; a channel opens only when a local client connects.\n\n' +
        'SPEC forms (as ssh -L):\n' +
        '  5900                     local 5900 -> 127.0.0.1:5900 on DEST\n' +
        '  5900-6000                every port of the range, same number on both sides\n' +
        '  LPORT:RHOST:RPORT        RHOST as seen from DEST (e.g. 3389:192.168.122.217:3389)\n' +
        '  BIND:LPORT:RHOST:RPORT   listen on BIND instead of 127.0.0.1\n' +
        '  LPORT:/path/to.sock      a unix socket on DEST (e.g. a VNC socket)',
    )
    .argument('<dest>', 'ssh_config alias or [user@]host[:port]')
    .argument('<spec...>', 'what to forward (see above)')
    .option('-l, --login <user>', 'user on DEST (like ssh -l)')
    .option('-p, --port <port>', 'SSH port of DEST')
    .option('-i, --identity <file>', 'identity file (repeatable)', collect)
    .option('-J, --jump <hops>', 'jump hosts, comma-separated: [user@]host[:port],... (like ssh -J)')
    .option('-F, --config <file>', 'ssh_config file to use instead of ~/.ssh/config')
    .option('-d, --detach', 'run in the background agent and return once every listener is up (like ssh -N -f)')
    .option('--bind <address>', 'local address to listen on', '127.0.0.1')
    .option('--auto-port', 'if a local port is taken, use the next free one and print the mapping')
    .option('--accept-new-host-key', 'trust and record unknown host keys (never changed ones)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  vmdesk forward -d kvmhost 5900\n  vmdesk forward -d kvmhost 5900-6000\n  vmdesk forward -J jump labuser@192.168.0.2 3389:192.168.122.217:3389')
    .action((dest: string, specs: string[], opts: ForwardOptions) => {
      prestartAgent(opts.detach);
      run(forwardCmd().then((m) => m.forwardCommand(dest, specs, opts, { agentCommand, stopSignal: stopSignal() })));
    });

  const hostOptions = (c: Command): Command =>
    c
      .option('-F, --ssh-config <file>', 'ssh_config file (like ssh -F)')
      .option('-J, --jump <hops>', 'jump hosts, comma-separated (like ssh -J); overrides ProxyJump')
      .option('--config <file>', "vmdesk's config file (default ~/.config/vmdesk/config.yaml)")
      .option('--accept-new-host-key', 'trust and record unknown host keys (never changed ones)')
      .option('--json', 'machine-readable output');

  hostOptions(
    program
      .command('ls')
      .description('list the VMs of hypervisors: state, console (exposed ones flagged), password, MAC, IP and its source')
      .argument('[host...]', 'configured host names or ssh destinations (default: every configured host)'),
  )
    .addHelpText('after', '\nThe whole inventory of a host is read in one SSH round trip (virsh over the same chain).\nExample: vmdesk ls kvmhost')
    .action((hosts: string[], opts: VmCommandOptions) => run(vmCmd().then((m) => m.lsCommand(hosts, opts))));

  const vmForwardOptions = (c: Command): Command =>
    hostOptions(c)
      .option('--port <port>', 'local port (default: 5900 + display for VNC, 3389 for RDP; the next free one if taken)')
      .option('-d, --detach', 'keep the forward in the background agent')
      .option('--open', 'start a native viewer on the forward')
      .option('--start', 'start the VM first if it is shut off')
      .option('--bind <address>', 'local address to listen on', '127.0.0.1');

  vmForwardOptions(
    program
      .command('vnc')
      .description("forward a local port to a VM's VNC console (loopback port, 0.0.0.0 port or unix socket), looked up by name")
      .argument('<vm>', 'HOST/VM, or VM alone when exactly one configured host has it'),
  )
    .option('--browser', 'open the console in the browser (noVNC over the SSH chain, no local VNC port); --port is then the web server port')
    .option('--no-open', 'with --browser: print the URL (token included) instead of opening a browser')
    .addHelpText(
      'after',
      '\nThe console is looked up again for every new connection, so a VM restarted on another autoport still works.\nExamples:\n  vmdesk vnc -d kvmhost/win2016 --open\n  vmdesk vnc kvmhost/win2016 --browser',
    )
    .action((ref: string, opts: VmCommandOptions) => {
      prestartAgent(opts.detach && !opts.browser, { ref, opts });
      run(vmCmd().then((m) => m.vncCommand(ref, opts, { agentCommand, stopSignal: stopSignal() })));
    });

  vmForwardOptions(
    program
      .command('rdp')
      .description("forward local 3389 to a guest's RDP port; the guest IP is found by the VM's MAC (DHCP leases, then the neighbour table)")
      .argument('<vm>', 'HOST/VM, or VM alone'),
  )
    .option('--ip <address>', 'the guest IP (skips discovery)')
    .option('--rdp-file <path>', 'where to write the .rdp file (default: the runtime directory)')
    .option('--browser', "RDP in the browser (IronRDP's web client over the SSH chain, no local RDP port); --port is then the web server port")
    .option('--no-open', 'with --browser: print the URL (token included) instead of opening a browser')
    .addHelpText('after', '\nExamples:\n  vmdesk rdp kvmhost/win2016 --open\n  vmdesk rdp kvmhost/win2016 --browser')
    .action((ref: string, opts: VmCommandOptions) => {
      prestartAgent(opts.detach, { ref, opts });
      run(vmCmd().then((m) => m.rdpCommand(ref, opts, { agentCommand, stopSignal: stopSignal() })));
    });

  vmForwardOptions(
    program
      .command('open')
      .description("VNC and (when the guest has an IP) RDP of a VM in one background tunnel: the seed's combined script")
      .argument('<vm>', 'HOST/VM, or VM alone'),
  )
    .option('--ip <address>', 'the guest IP (skips discovery)')
    .option('--rdp-file <path>', 'where to write the .rdp file')
    .action((ref: string, opts: VmCommandOptions) => {
      prestartAgent(opts.detach ?? true, { ref, opts });
      run(vmCmd().then((m) => m.openCommand(ref, opts, { agentCommand, stopSignal: stopSignal() })));
    });

  hostOptions(program.command('hosts').description('list the hypervisors of the config file and whether they answer (ssh and libvirt)')).action((opts: VmCommandOptions) =>
    run(vmCmd().then((m) => m.hostsCommand(opts))),
  );

  const auditCmd = () => import('./commands/audit.js');
  const editOptions = (c: Command): Command =>
    hostOptions(c)
      .option('--restart', 'restart a running VM so the change takes effect now (clean shutdown, bounded wait, start)')
      .option('--force', 'with --restart: power the VM off (virsh destroy) if it does not shut down in time')
      .option('--shutdown-timeout <seconds>', 'with --restart: how long to wait for a clean shutdown (default 60)')
      .option('--backup-dir <dir>', 'also keep the saved definition here, on this machine')
      .option('-y, --yes', 'do not ask; required for a non-loopback address and for --fix without a terminal');

  editOptions(
    program
      .command('audit')
      .summary('find VM consoles reachable from other machines (exit 21 when any is exposed)')
      .description(
        "Every VM's VNC and SPICE consoles on the hosts: listen addresses (0.0.0.0, :: or any non-loopback address is exposed), " +
          "password, TLS (vnc_tls/spice_tls in the host's qemu.conf when readable), and QEMU processes started by hand with -vnc on " +
          'a non-loopback address. Each exposed console is a finding with a severity (no password: high; password without TLS: ' +
          'medium) and the exact fix. Exit status 0 when clean, 21 when anything is exposed (for cron and CI). --fix moves every ' +
          'exposed libvirt console to 127.0.0.1 with vnc-listen (asking first).',
      )
      .argument('[host...]', 'configured host names or ssh destinations (default: every configured host)'),
  )
    .option('--fix', 'move every exposed libvirt console to 127.0.0.1 (definition saved first); with --restart it takes effect now')
    .addHelpText('after', '\nExamples:\n  vmdesk audit kvmhost\n  vmdesk audit kvmhost --fix --restart')
    .action((hosts: string[], opts: AuditOptions) => run(auditCmd().then((m) => m.auditCommand(hosts, opts))));

  editOptions(
    program
      .command('vnc-listen')
      .summary("change where a VM's console listens, through libvirt (backed up first)")
      .description(
        "Set the listen address of a VM's VNC/SPICE consoles: virsh dumpxml --inactive, only <graphics> edited, virsh define " +
          '(never editing files under /etc/libvirt). The current definition is saved on the host first (path printed). ' +
          'A running VM keeps its old address until it restarts (--restart). A non-loopback address needs --yes: ' +
          'the safe alternative is to keep 127.0.0.1 and reach it with `vmdesk vnc` through SSH.',
      )
      .argument('<vm>', 'HOST/VM')
      .argument('<address>', 'IP address to listen on, e.g. 127.0.0.1'),
  )
    .addHelpText('after', '\nExamples:\n  vmdesk vnc-listen kvmhost/win2019 127.0.0.1 --restart\n  vmdesk vnc-listen kvmhost/win2019 0.0.0.0 --yes   # the seed\'s insecure way, if you must')
    .action((ref: string, address: string, opts: EditOptions) => run(auditCmd().then((m) => m.vncListenCommand(ref, address, opts))));

  hostOptions(
    program
      .command('pin-ip')
      .summary("reserve the guest's IP in its libvirt network's DHCP (so RDP forwards stay put)")
      .description(
        "Add a DHCP host reservation for the VM's NIC in its libvirt network (virsh net-update ... add ip-dhcp-host --live --config), " +
          'by default for the IP the guest has now. Refuses an IP outside the network or reserved for another MAC; does nothing when ' +
          'the reservation exists; --remove deletes it.',
      )
      .argument('<vm>', 'HOST/VM, or VM alone')
      .argument('[ip]', 'the address to reserve (default: the current one)'),
  )
    .option('--network <name>', 'the libvirt network (when the VM has NICs on several)')
    .option('--remove', 'delete the reservation')
    .addHelpText('after', '\nExamples:\n  vmdesk pin-ip kvmhost/win2016\n  vmdesk pin-ip kvmhost/win2016 192.168.122.50\n  vmdesk pin-ip kvmhost/win2016 --remove')
    .action((ref: string, ip: string | undefined, opts: PinIpOptions) => run(auditCmd().then((m) => m.pinIpCommand(ref, ip, opts))));

  hostOptions(
    program
      .command('ui')
      .summary('the dashboard and VM consoles in the browser (served from this process)')
      .description(
        'Serve the dashboard on 127.0.0.1 (a free port unless --port) and open it in the browser: the hosts of ' +
          'the config file and of the command line, their VMs, consoles in the browser (noVNC bridged onto the SSH ' +
          'chain, nothing installed on any server), RDP forwards and live tunnel state. The URL carries a random ' +
          'access token in its #fragment; every page, API call and WebSocket needs it. Ctrl-C stops the server.',
      )
      .argument('[dest...]', 'more hosts: configured names or ssh destinations'),
  )
    .option('--port <port>', 'web server port (default: a free one)')
    .option('--bind <address>', 'address to serve on; anything but loopback prints a warning', '127.0.0.1')
    .option('--no-open', 'print the URL (token included) instead of opening a browser')
    .addHelpText('after', '\nExamples:\n  vmdesk ui\n  vmdesk ui kvmhost\n  vmdesk ui labuser@192.168.0.2 -J jump --no-open')
    .action((dests: string[], opts: UiOptions) => run(import('./commands/ui.js').then((m) => m.uiCommand(dests, opts, { stopSignal: stopSignal() }))));

  program
    .command('ps')
    .description('list background tunnels: hops and their state, forwards, connections, bytes')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => run(psCmd().then((m) => m.psCommand(opts))));

  program
    .command('stop')
    .description('stop background tunnels by id (see vmdesk ps)')
    .argument('[id...]', 'tunnel ids')
    .option('--all', 'stop every tunnel')
    .option('--json', 'machine-readable output')
    .action((ids: string[], opts: { all?: boolean; json?: boolean }) => run(psCmd().then((m) => m.stopCommand(ids, opts))));

  program
    .command('demo')
    .summary('what `npm start` runs: an embedded demo site with live consoles in the browser')
    .description(
      'Start an embedded demo site inside this process: two in-process SSH servers on loopback (a jump host and a ' +
        'hypervisor with fresh, pinned host keys), simulated libvirt VMs whose consoles are small built-in VNC ' +
        'servers, and the dashboard in front of them, through a real two-hop SSH chain. Nothing outside this ' +
        'process is touched. Ctrl-C stops it.',
    )
    .option('--port <port>', 'web server port (default: a free one)')
    .option('--no-open', 'print the URL (token included) instead of opening a browser')
    .option('--json', 'machine-readable output')
    .action((opts: UiOptions) => run(import('./commands/demo.js').then((m) => m.demoCommand(opts, { stopSignal: stopSignal() }))));

  program.addCommand(
    new Command('__agent').description('internal: the background agent').action(() =>
      run(
        (async () => {
          const dir = ensureRuntimeDir();
          const log = (l: string) => process.stdout.write(`${new Date().toISOString()} ${l}\n`);
          const { runAgent } = await import('../daemon/agent.js');
          const ok = await runAgent({ dir, log });
          return ok ? 0 : EXIT.AGENT;
        })(),
      ),
    ),
    { hidden: true },
  );
  program.addOption(new Option('--debug', 'print stack traces of internal errors').hideHelp());
  return program;
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  // --debug is the flag form of VMDESK_DEBUG, which reportError reads (stack traces of internal errors).
  if (argv.includes('--debug')) process.env.VMDESK_DEBUG = '1';
  let pending: Promise<number> | undefined;
  const program = buildProgram((p) => {
    pending = p;
  });
  try {
    await program.parseAsync(argv);
    if (!pending) return 0;
    return await pending;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      if (err.exitCode === 0) return 0;
      return json ? reportError(new VmdeskError('USAGE', err.message.replace(/^error: /, '')), true) : EXIT.USAGE;
    }
    return reportError(err, json);
  }
}

// A reader that went away (`vmdesk ps --json | head -1`, `| true`) is not a failure of the command: the
// rest of its output is dropped and it ends with its own exit status, as a C program ignoring SIGPIPE with
// EPIPE-checked writes would. Node ignores SIGPIPE, so the closed pipe arrives here as an 'error' event.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
    // Forwards and agents end by closing their handles; a foreground command that finished has none left,
    // but an ssh2 socket in TIME_WAIT must not keep a finished command alive.
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`vmdesk: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(EXIT.INTERNAL);
  },
);
