/** `vmdesk demo` (npm start): until the embedded demo site lands, a guided tour of what works today. */

const TOUR = `vmdesk ${'\u2014'} reach VM desktops behind SSH jump hosts

What works today (issue 2 of the roadmap):

  vmdesk forward -d kvmhost 5900          the seed's ssh -L 5900:localhost:5900 -N -f
  vmdesk forward -d kvmhost 5900-6000     101 forwards, one SSH connection, in about a second
  vmdesk forward -J jump user@192.168.0.2 3389:192.168.122.217:3389
                                          through a jump host, nothing typed on it
  vmdesk ps                               tunnels, per-hop state, bytes
  vmdesk stop --all

Hosts, users, keys and ProxyJump come from your ~/.ssh/config (read with ssh -G).
Host keys are checked on every hop against known_hosts; a changed key is refused.

Next on the roadmap: VMs by name (vmdesk ls / vnc / rdp), the console in the
browser with an embedded demo site, and vmdesk audit.
Run 'vmdesk --help' or 'vmdesk forward --help' for details.
`;

export async function demoCommand(): Promise<number> {
  process.stdout.write(TOUR);
  return 0;
}
