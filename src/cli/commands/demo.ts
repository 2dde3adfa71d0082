/** `vmdesk demo` (npm start): until the embedded demo site lands (the browser-console issue), a guided tour of what works today. */

const TOUR = `vmdesk ${'\u2014'} reach VM desktops behind SSH jump hosts

What works today:

  vmdesk forward -d kvmhost 5900          the seed's ssh -L 5900:localhost:5900 -N -f
  vmdesk forward -d kvmhost 5900-6000     101 forwards, one SSH connection, in about a second
  vmdesk forward -J jump user@192.168.0.2 3389:192.168.122.217:3389
                                          through a jump host, nothing typed on it
  vmdesk ps                               tunnels, per-hop state, bytes
  vmdesk stop --all

  vmdesk ls kvmhost                       VMs, consoles (exposed ones flagged), IPs found by MAC
  vmdesk vnc -d kvmhost/win2016 --open    a VM's console by name, whatever it listens on
  vmdesk rdp -d kvmhost/win2016           RDP to a NAT guest, no arp guessing
  vmdesk open kvmhost/win2016             VNC + RDP in one background tunnel

Hosts, users, keys and ProxyJump come from your ~/.ssh/config (read with ssh -G).
Host keys are checked on every hop against known_hosts; a changed key is refused.

Next on the roadmap: the console in the browser with an embedded demo site
(then this command shows a live console with no hypervisor anywhere), and
vmdesk audit for exposed consoles.
Run 'vmdesk --help' or 'vmdesk forward --help' for details.
`;

export async function demoCommand(): Promise<number> {
  process.stdout.write(TOUR);
  return 0;
}
