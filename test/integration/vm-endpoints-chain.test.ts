/**
 * console/vm-endpoints.ts over a real SshChain (execStream, the fixed
 * `/bin/sh -s` exec) to an in-process host answering libvirt's commands from
 * the demo hypervisor: with its event stream the second connection needs no
 * lookup; with a virsh that refuses `event`, every connection is looked up and
 * the status says why.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DemoHypervisor } from '../../src/demo/hypervisor.js';
import type { ExecContext } from '../../src/demo/ssh-server.js';
import { vmEndpointsOf } from '../../src/console/vm-endpoints.js';
import { domainEventsScript } from '../../src/libvirt/domain-events.js';
import { asDomainUuid } from '../../src/libvirt/domain-list.js';
import { commandLine } from '../../src/libvirt/shell-quote.js';
import { SshChain } from '../../src/ssh/chain.js';
import { planHops } from '../../src/ssh/hop-plan.js';
import { startSite, type Site } from './harness.js';
import type { VmTarget } from '../../src/forward/types.js';

const POLL_MS = 20;
const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, POLL_MS));
  assert.ok(ok(), what);
};

describe('VM endpoints over a real chain', () => {
  const hv = new DemoHypervisor();
  let execs: string[] = [];
  let refuseEvents = false;
  let site: Site;
  before(async () => {
    site = await startSite({
      targetExec: (ctx: ExecContext) => {
        execs.push(ctx.command);
        if (refuseEvents && ctx.command === domainEventsScript(hv.uri)) {
          ctx.stderr("error: unknown command: 'event'\n");
          return 1;
        }
        return hv.exec(ctx);
      },
    });
  });
  after(async () => {
    hv.stop();
    await site.close();
  });

  const chain = async () => new SshChain(await planHops('target', { configFile: site.configFile }), { agentSocket: 'none' });

  const win2016 = async (): Promise<VmTarget> => {
    const r = await hv.run(commandLine(['virsh', '-c', hv.uri, 'list', '--all', '--uuid', '--name']));
    const uuid = /^(\S+) win2016$/m.exec(r.stdout)![1]!;
    return { kind: 'vm', uri: hv.uri, uuid: asDomainUuid(uuid), vm: 'win2016', service: 'vnc' };
  };

  it('follows the events: one lookup for two connections, a restart looks up again', { timeout: 30_000 }, async () => {
    const c = await chain();
    await c.connect();
    try {
      const t = await win2016();
      const e = vmEndpointsOf(c, 'kvm');
      e.follow(hv.uri);
      await until('events live', () => e.status(hv.uri).mode === 'events');
      execs = [];
      assert.deepEqual((await e.find(t)).target, { kind: 'tcp', host: '127.0.0.1', port: 5900 });
      assert.equal(execs.length, 1);
      await e.find(t);
      assert.equal(execs.length, 1);
      await hv.run(commandLine(['virsh', '-c', hv.uri, 'destroy', t.uuid]));
      await hv.run(commandLine(['virsh', '-c', hv.uri, 'start', t.uuid]));
      // The events arrive over the chain: until then find() may still answer from the entry (open() syncs first).
      for (let i = 0; i < 250 && execs.length < 2; i++) {
        await e.find(t);
        if (execs.length < 2) await new Promise((r) => setTimeout(r, POLL_MS));
      }
      assert.equal(execs.length, 2);
    } finally {
      await c.close();
    }
  });

  it('a virsh that refuses `event`: looked up per connection, and says why', { timeout: 30_000 }, async () => {
    refuseEvents = true;
    const c = await chain();
    await c.connect();
    try {
      const t = await win2016();
      const e = vmEndpointsOf(c, 'kvm');
      e.follow(hv.uri);
      await until('the refusal read', () => e.status(hv.uri).mode === 'lookup' && (e.status(hv.uri) as { reason: string }).reason !== 'events starting');
      assert.deepEqual(e.status(hv.uri), { mode: 'lookup', reason: "virsh: unknown command: 'event'" });
      execs = [];
      await e.find(t);
      await e.find(t);
      assert.equal(execs.length, 2);
    } finally {
      await c.close();
      refuseEvents = false;
    }
  });
});
