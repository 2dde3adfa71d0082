import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decodeRemoteScript, encodeRemoteScript } from '../ssh/remote-script.js';
import { domainEventsArgv, domainEventsScript, mayName, movesEndpoints, parseDomainEventLine } from './domain-events.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');
const lines = (name: string) => fixture(name).split('\n');

describe('parseDomainEventLine (virsh 9.0 event --all --loop, captured in the lab)', () => {
  it('reads every lifecycle line of a define, start, suspend, resume, reboot, destroy, rename, undefine', () => {
    const parsed = lines('event-all-loop-lifecycle.txt').map(parseDomainEventLine);
    const events = parsed.filter((e) => e.kind === 'domain');
    assert.equal(events.length, 10);
    assert.ok(parsed.every((e) => e.kind === 'domain' || e.kind === 'blank'));
    assert.deepEqual(events[2], { kind: 'domain', event: 'lifecycle', rest: "vmd-evcap': Started Booted" });
    assert.ok(events.slice(0, 8).every((e) => mayName(e, 'vmd-evcap')));
  });

  it('the same lines with --timestamp', () => {
    const events = lines('event-all-loop-timestamp.txt').map(parseDomainEventLine).filter((e) => e.kind === 'domain');
    assert.equal(events.length, 10);
    assert.deepEqual(events[6], { kind: 'domain', event: 'lifecycle', rest: "vmd-evcap': Stopped Destroyed" });
  });

  it('a name with quote-colon-space in it fits every name it starts with, never a shorter stranger', () => {
    const e = parseDomainEventLine("event 'lifecycle' for domain 'vmd-ev': cap': Undefined Removed");
    assert.equal(e.kind, 'domain');
    assert.ok(e.kind === 'domain' && mayName(e, "vmd-ev': cap") && mayName(e, 'vmd-ev'));
    assert.ok(e.kind === 'domain' && !mayName(e, 'vmd-evcap') && !mayName(e, 'vmd'));
  });

  it("reads a detail-less event (reboot), the hostile names and the loop's summary when libvirtd stops", () => {
    const parsed = lines('event-all-loop-libvirtd-stopped.txt').map(parseDomainEventLine);
    const reboot = parsed.find((e) => e.kind === 'domain' && e.event === 'reboot');
    assert.ok(reboot && reboot.kind === 'domain' && mayName(reboot, 'vmd-evcap'));
    assert.ok(parsed.some((e) => e.kind === 'domain' && mayName(e, "x'; touch pwned; echo '")));
    assert.ok(parsed.some((e) => e.kind === 'domain' && mayName(e, '$(touch pwned2)')));
    assert.deepEqual(parsed.find((e) => e.kind === 'summary'), { kind: 'summary', count: 15 });
    assert.ok(!parsed.some((e) => e.kind === 'unknown'));
  });

  it('a line cut by a newline in a name, or from an unknown format, is unknown', () => {
    assert.equal(parseDomainEventLine("event 'lifecycle' for domain 'half").kind, 'unknown');
    assert.equal(parseDomainEventLine("name': Started Booted").kind, 'unknown');
    assert.equal(parseDomainEventLine("event 'lifecycle' for network 'default': Started").kind, 'unknown');
  });

  it("reads the script's own lines", () => {
    assert.deepEqual(parseDomainEventLine('vmdesk-events-exit 1'), { kind: 'exit', code: 1 });
    assert.deepEqual(parseDomainEventLine('vmdesk-events-started'), { kind: 'started' });
  });

  it('graphics (a client connecting, as each forward does) does not move an endpoint; lifecycle, reboot and unknown events do', () => {
    // virsh-domain-event.c's format for graphics events (not in the capture: the lab host has no VNC client).
    const g = parseDomainEventLine("event 'graphics' for domain 'win2019': connected local[IPv4 127.0.0.1 5901] remote[IPv4 127.0.0.1 40112] none");
    assert.ok(g.kind === 'domain' && !movesEndpoints(g) && mayName(g, 'win2019'));
    assert.ok(movesEndpoints({ event: 'lifecycle' }) && movesEndpoints({ event: 'reboot' }) && movesEndpoints({ event: 'device-removed' }) && movesEndpoints({ event: 'some-new-event' }));
  });
});

describe('domainEventsScript', () => {
  it('quotes the URI and survives the remote-script framing', () => {
    const uri = "qemu+ssh://x'; touch pwned; echo '/system";
    const script = domainEventsScript(uri);
    assert.ok(script.includes(`'virsh' '-c' 'qemu+ssh://x'\\''; touch pwned; echo '\\''/system' 'event' '--all' '--loop' </dev/null &`));
    assert.deepEqual(decodeRemoteScript(encodeRemoteScript(script)), { script });
    assert.deepEqual(domainEventsArgv('qemu:///system'), ['virsh', '-c', 'qemu:///system', 'event', '--all', '--loop']);
  });
});
