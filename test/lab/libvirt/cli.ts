/**
 * Manual control of the lab hypervisor, as root:
 *   node --import tsx test/lab/libvirt/cli.ts up [--namespace NS] [--create-namespace] [--no-guests]
 *   node --import tsx test/lab/libvirt/cli.ts down [--namespace NS]
 */
import { libvirtDown, libvirtUp } from './hypervisor.js';

const [cmd, ...rest] = process.argv.slice(2);
const nsIndex = rest.indexOf('--namespace');
const namespace = nsIndex >= 0 ? rest[nsIndex + 1] : undefined;

if (cmd === 'up') {
  const hv = await libvirtUp({
    ...(namespace ? { namespace } : {}),
    createNamespace: rest.includes('--create-namespace'),
    startGuests: !rest.includes('--no-guests'),
  });
  console.log(JSON.stringify({ namespace: hv.namespace, image: hv.image, addresses: Object.fromEntries(hv.addresses), timings: hv.timings }, null, 2));
} else if (cmd === 'down') {
  await libvirtDown(namespace ? { namespace } : {});
} else {
  console.error('usage: cli.ts up|down [--namespace NS] [--create-namespace] [--no-guests]');
  process.exitCode = 2;
}
