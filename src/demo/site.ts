/**
 * The embedded demo site that `vmdesk demo` (npm start) runs: a jump host
 * and a KVM hypervisor as two in-process SSH servers on 127.0.0.1, the
 * hypervisor answering libvirt's commands from the demo inventory, and each
 * running demo VM's console a DemoConsole. vmdesk reaches it through a real
 * two-hop SSH chain with its own key and known_hosts in a private temp dir,
 * never the user's ~/.ssh. A demo: no real code path depends on it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HopSpec, ResolvedHost } from '../ssh/types.js';
import { DEMO_HOST_NAME, type DemoInventory } from './demo-inventory.js';
import { DemoHypervisor } from './hypervisor.js';
import { DemoConsole } from './rfb-server.js';
import { DemoSshServer, generateEd25519 } from './ssh-server.js';

const DEMO_USER = 'demo';
const DEMO_URI = 'qemu:///system';
const LOOPBACK = '127.0.0.1';

/** A running demo site. */
export interface DemoSite {
  /** The demo hypervisor as vmdesk connects to it: the jump first, then the host. */
  hops: HopSpec[];
  /** `demo-kvm` */
  hostName: string;
  /** `qemu:///system` */
  libvirtUri: string;
  knownHostsFile: string;
  identityFile: string;
  /** An ssh_config naming `demo-jump` and `demo-kvm` (ProxyJump demo-jump), so the CLI works on the demo with `-F`. */
  sshConfigFile: string;
  /** The private temp dir (0700) holding the key and known_hosts; removed by stop(). */
  dir: string;
  /** The demo user's password on the hypervisor (the hops authenticate with the key). */
  password: string;
  jump: DemoSshServer;
  hypervisor: DemoSshServer;
  /** The libvirt side of the hypervisor: its VMs and their consoles. */
  libvirt: DemoHypervisor;
  /** Stops every server and console (and pending guest power-offs) and removes the temp dir. */
  stop(): Promise<void>;
}

export interface DemoSiteOptions {
  log?: (line: string) => void;
  /** The VMs and networks to simulate (default: demoInventory()); tests add VMs with awkward names. */
  inventory?: DemoInventory;
}

/** ssh_config as `ssh -G` would resolve it for a demo host: everything explicit, nothing from ~/.ssh. */
function demoHost(alias: string, port: number, identityFile: string, knownHostsFile: string): ResolvedHost {
  return {
    alias,
    hostName: LOOPBACK,
    port,
    user: DEMO_USER,
    identityFiles: [identityFile],
    certificateFiles: [],
    identitiesOnly: true,
    identityAgent: 'none',
    proxyJump: undefined,
    proxyCommand: undefined,
    userKnownHostsFiles: [knownHostsFile],
    globalKnownHostsFiles: [],
    revokedHostKeys: [],
    checkHostIp: false,
    strictHostKeyChecking: 'yes',
    hashKnownHosts: false,
    hostKeyAlias: undefined,
    connectTimeoutMs: 10_000,
    serverAliveIntervalMs: 15_000,
    serverAliveCountMax: 3,
    batchMode: true,
    passwordAuthentication: false,
    kbdInteractiveAuthentication: false,
    pubkeyAuthentication: true,
  };
}

/** The known_hosts line for a server on 127.0.0.1 (`[host]:port`, as OpenSSH writes a non-22 port). */
function knownHostsLine(server: DemoSshServer): string {
  return `[${LOOPBACK}]:${server.port} ssh-ed25519 ${server.hostPublicKey.toString('base64')}`;
}

/**
 * Start the demo site.
 * @example
 * const site = await startDemoSite();
 * const chain = new SshChain(site.hops, {});
 * const inv = await readInventory((c) => chain.exec(c), site.libvirtUri);
 * await chain.close();
 * await site.stop();
 */
export async function startDemoSite(opts: DemoSiteOptions = {}): Promise<DemoSite> {
  const log = opts.log ?? (() => {});
  const dir = await mkdtemp(join(tmpdir(), 'vmdesk-demo-'));
  await chmod(dir, 0o700);
  const consoles = new Set<DemoConsole>();
  const servers: DemoSshServer[] = [];
  let libvirt: DemoHypervisor | undefined;
  const stop = async (): Promise<void> => {
    libvirt?.stop();
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all([...consoles].map((c) => c.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const client = generateEd25519('vmdesk-demo');
    const identityFile = join(dir, 'id_ed25519');
    await writeFile(identityFile, client.privateKey, { mode: 0o600 });
    await writeFile(`${identityFile}.pub`, `${client.publicKey}\n`, { mode: 0o644 });

    libvirt = new DemoHypervisor({
      uri: DEMO_URI,
      log,
      ...(opts.inventory ? { inventory: opts.inventory } : {}),
      // Each start of a VM gets a console of its own, stopped when the VM stops (QEMU's VNC server ends with QEMU).
      startConsole: async (vm) => {
        const screen = new DemoConsole({ name: vm.name, background: vm.background, host: LOOPBACK, port: 0 });
        consoles.add(screen);
        const port = await screen.start();
        return {
          host: LOOPBACK,
          port,
          stop: async () => {
            consoles.delete(screen);
            await screen.stop();
          },
        };
      },
    });
    const hv = libvirt;
    await libvirt.serveConsoles();

    const password = randomBytes(18).toString('base64url');
    const hypervisor = new DemoSshServer({
      host: LOOPBACK,
      user: DEMO_USER,
      password,
      authorizedKeys: [client.publicKey],
      exec: hv.exec,
      // The made-up console addresses (127.0.0.1:5900.., the socket path) lead to the DemoConsoles; nothing else is reachable.
      routeTcp: (host, port) => hv.routeTcp(host, port),
      routeUnix: (path) => hv.routeUnix(path),
    });
    servers.push(hypervisor);
    await hypervisor.start();

    const jump = new DemoSshServer({
      host: LOOPBACK,
      user: DEMO_USER,
      authorizedKeys: [client.publicKey],
      // A jump host that only lets through to the hypervisor's sshd.
      routeTcp: (host, port) => (host === LOOPBACK && port === hypervisor.port ? { host: LOOPBACK, port } : undefined),
      routeUnix: () => undefined,
    });
    servers.push(jump);
    await jump.start();

    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, `${knownHostsLine(jump)}\n${knownHostsLine(hypervisor)}\n`, { mode: 0o600 });
    const sshConfigFile = join(dir, 'ssh_config');
    const common = `  HostName ${LOOPBACK}\n  User ${DEMO_USER}\n  IdentityFile ${identityFile}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile ${knownHostsFile}\n  StrictHostKeyChecking yes\n  BatchMode yes\n`;
    await writeFile(sshConfigFile, `Host demo-jump\n  Port ${jump.port}\n${common}\nHost ${DEMO_HOST_NAME}\n  Port ${hypervisor.port}\n  ProxyJump demo-jump\n${common}`, { mode: 0o600 });

    const hops: HopSpec[] = [
      { label: 'demo-jump', host: demoHost('demo-jump', jump.port, identityFile, knownHostsFile), transport: { kind: 'tcp' } },
      {
        label: DEMO_HOST_NAME,
        host: { ...demoHost(DEMO_HOST_NAME, hypervisor.port, identityFile, knownHostsFile), proxyJump: `${DEMO_USER}@${LOOPBACK}:${jump.port}` },
        transport: { kind: 'via-previous-hop' },
      },
    ];
    log(`demo site: demo-jump on ${LOOPBACK}:${jump.port}, ${DEMO_HOST_NAME} on ${LOOPBACK}:${hypervisor.port}, ${consoles.size} demo consoles`);
    return {
      hops,
      hostName: DEMO_HOST_NAME,
      libvirtUri: DEMO_URI,
      knownHostsFile,
      identityFile,
      sshConfigFile,
      dir,
      password,
      jump,
      hypervisor,
      libvirt: hv,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
