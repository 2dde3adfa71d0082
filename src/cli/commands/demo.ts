/**
 * `vmdesk demo` (what `npm start` runs): the embedded demo site from
 * src/demo (a jump host, a hypervisor and simulated VMs, all in this process)
 * behind the real dashboard, through a real two-hop SSH chain.
 */
import { serveUi, type UiOptions } from './ui.js';

const banner = (sshConfig: string) => `vmdesk demo: an embedded DEMO site is running inside this process.
  demo-jump (in-process SSH server) -> demo-kvm (in-process SSH server answering libvirt's commands)
  The VMs are simulated; their consoles are small built-in VNC servers. Nothing outside this process is touched.

The CLI works on it too, while this runs (in another terminal):
  vmdesk ls demo-kvm -F ${sshConfig}
  vmdesk audit demo-kvm -F ${sshConfig}

With your own hypervisors:
  vmdesk ui kvmhost                       this dashboard for a real host (ssh_config alias or user@host, -J jump)
  vmdesk ls kvmhost                       VMs, consoles (exposed ones flagged), IPs found by MAC
  vmdesk vnc kvmhost/win2016 --browser    one VM's console in the browser
  vmdesk forward -d kvmhost 5900-6000     the seed's 101 ssh -L forwards, over one SSH connection
Run 'vmdesk --help' for everything else.`;

export async function demoCommand(opts: UiOptions, ctx: { stopSignal: Promise<string> }): Promise<number> {
  const { startDemoSite } = await import('../../demo/site.js');
  const site = await startDemoSite();
  try {
    return await serveUi({
      hosts: [{ name: site.hostName, dest: 'demo@demo-kvm via demo-jump', uri: site.libvirtUri, planHops: async () => site.hops }],
      path: '/',
      isDemo: true,
      chain: {},
      ui: opts,
      stopSignal: ctx.stopSignal,
      banner: opts.json ? undefined : banner(site.sshConfigFile),
    });
  } finally {
    await site.stop();
  }
}
