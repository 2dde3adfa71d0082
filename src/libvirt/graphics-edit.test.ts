import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { parseDomainXml } from './domain-xml.js';
import { normalizeListenAddress, setGraphicsListen } from './graphics-edit.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

/** The text before the first `<graphics` and after the last `</graphics>` (or self-closing end). */
function outside(xml: string): { head: string; tail: string } {
  const start = xml.indexOf('<graphics');
  const close = xml.lastIndexOf('</graphics>');
  const end = close >= 0 ? close + '</graphics>'.length : xml.indexOf('/>', xml.lastIndexOf('<graphics')) + 2;
  return { head: xml.slice(0, start), tail: xml.slice(end) };
}

const domain = (devices: string): string =>
  `<domain type="kvm">\n  <name>t</name>\n  <uuid>11111111-2222-3333-4444-555555555555</uuid>\n  <devices>\n${devices}\n  </devices>\n</domain>\n`;

describe('setGraphicsListen on real dumpxml output', () => {
  it('win2019: 0.0.0.0 becomes 127.0.0.1 in the attribute and the <listen> child, nothing else moves', () => {
    const xml = fixture('dumpxml-win2019-exposed.xml');
    const r = setGraphicsListen(xml, '127.0.0.1');
    assert.equal(r.isChanged, true);
    assert.deepEqual(r.before, ['0.0.0.0']);
    assert.deepEqual(outside(r.xml), outside(xml));
    assert.match(r.xml, /<graphics type='vnc' port='5901' autoport='yes' listen='127\.0\.0\.1'>\n {6}<listen type='address' address='127\.0\.0\.1'\/>\n {4}<\/graphics>/);
    assert.equal(r.xml.length, xml.length + 4);
    assert.deepEqual(parseDomainXml(r.xml).graphics[0]!.listens, [{ type: 'address', address: '127.0.0.1' }]);
  });

  it('win2016 already on loopback: a no-op that returns the very same text', () => {
    const xml = fixture('dumpxml-win2016-loopback.xml');
    const r = setGraphicsListen(xml, '127.0.0.1');
    assert.equal(r.isChanged, false);
    assert.equal(r.xml, xml);
    assert.deepEqual(r.before, ['127.0.0.1']);
  });

  it('win2016 --inactive: an address-less <listen type=address/> gets the address, no listen= attribute is invented', () => {
    const xml = fixture('dumpxml-win2016-inactive.xml');
    const r = setGraphicsListen(xml, '::1');
    assert.equal(r.isChanged, true);
    assert.deepEqual(r.before, []);
    assert.ok(r.xml.includes("<graphics type='vnc' port='-1' autoport='yes' keymap='en-us'>\n      <listen type='address' address='::1'/>"));
    assert.deepEqual(outside(r.xml), outside(xml));
  });

  it('rhel8 --security-info: the passwd value stays byte-identical', () => {
    const xml = fixture('dumpxml-rhel8-passwd-security-info.xml');
    const r = setGraphicsListen(xml, '192.168.122.1');
    assert.ok(r.xml.includes("listen='192.168.122.1' passwd='Lab-pw1'>"));
    assert.deepEqual(outside(r.xml), outside(xml));
    const g = parseDomainXml(r.xml).graphics[0]!;
    assert.equal(g.hasPassword, true);
    assert.deepEqual(g.listens, [{ type: 'address', address: '192.168.122.1' }]);
  });

  it('the hostile network listen: becomes an address listen, the name with $(...) untouched', () => {
    const xml = fixture('dumpxml-hostile-network-listen.xml');
    const r = setGraphicsListen(xml, '127.0.0.1');
    assert.deepEqual(r.before, ['192.168.122.1', 'network:default']);
    assert.ok(r.xml.includes("<graphics type='vnc' port='5903' autoport='yes' listen='127.0.0.1'>\n      <listen type='address' address='127.0.0.1'/>\n    </graphics>"));
    assert.deepEqual(outside(r.xml), outside(xml));
    assert.equal(parseDomainXml(r.xml).name, '$(touch pwned2)');
  });

  it('the spice console of "-rf" (shut off) moves like VNC does; types can leave it out', () => {
    const xml = fixture('dumpxml-dash-spice-shutoff.xml');
    const r = setGraphicsListen(xml, '0.0.0.0');
    assert.deepEqual(parseDomainXml(r.xml).graphics[0]!.listens, [{ type: 'address', address: '0.0.0.0' }]);
    assert.deepEqual(outside(r.xml), outside(xml));
    assert.throws(() => setGraphicsListen(xml, '127.0.0.1', { types: ['vnc'] }), (e: unknown) => isVmdeskError(e, 'VNC_NOT_CONFIGURED'));
  });

  it('GRAPHICS_EDIT_UNSUPPORTED for socket consoles (debian12, hostile socket path)', () => {
    for (const name of ['dumpxml-debian12-socket.xml', 'dumpxml-hostile-socket-listen.xml']) {
      assert.throws(
        () => setGraphicsListen(fixture(name), '127.0.0.1'),
        (e: unknown) => isVmdeskError(e, 'GRAPHICS_EDIT_UNSUPPORTED') && typeof e.context.socket === 'string' && e.hint !== undefined,
      );
    }
  });
});

describe('setGraphicsListen on crafted domains', () => {
  it('a self-closing graphics without any listen gets listen=ADDR, in its own quote style', () => {
    const xml = domain(`    <graphics type="vnc" autoport="yes"/>`);
    const r = setGraphicsListen(xml, '127.0.0.1');
    assert.equal(r.xml, domain(`    <graphics type="vnc" autoport="yes" listen="127.0.0.1"/>`));
    assert.deepEqual(r.before, []);
  });

  it('double quotes stay double quotes; several listens all move', () => {
    const xml = domain(`    <graphics type="vnc" port="-1" autoport="yes" listen="10.0.0.5">\n      <listen type="address" address="10.0.0.5"/>\n      <listen type="address" address="10.0.0.6"></listen>\n    </graphics>`);
    const r = setGraphicsListen(xml, '127.0.0.1');
    assert.equal(
      r.xml,
      domain(`    <graphics type="vnc" port="-1" autoport="yes" listen="127.0.0.1">\n      <listen type="address" address="127.0.0.1"/>\n      <listen type="address" address="127.0.0.1"></listen>\n    </graphics>`),
    );
    assert.deepEqual(r.before, ['10.0.0.5', '10.0.0.6']);
  });

  it('spice with tlsPort: ports and the passwd kept, both consoles of a vnc+spice domain move', () => {
    const spice = `    <graphics type='spice' port='5930' tlsPort='5931' autoport='no' listen='0.0.0.0' passwd='a&apos;b&quot;c&amp;'>\n      <listen type='address' address='0.0.0.0'/>\n      <channel name='main' mode='secure'/>\n    </graphics>`;
    const vnc = `    <graphics type='vnc' port='-1'>\n      <listen type='network' network='lan'/>\n    </graphics>`;
    const xml = domain(`${spice}\n${vnc}\n    <graphics type='egl-headless'/>`);
    const r = setGraphicsListen(xml, '::1');
    assert.ok(r.xml.includes(`tlsPort='5931' autoport='no' listen='::1' passwd='a&apos;b&quot;c&amp;'>`));
    assert.ok(r.xml.includes(`<listen type='address' address='::1'/>\n      <channel name='main' mode='secure'/>`));
    assert.ok(r.xml.includes(`<graphics type='vnc' port='-1'>\n      <listen type='address' address='::1'/>\n    </graphics>`));
    assert.ok(r.xml.includes(`<graphics type='egl-headless'/>`));
    assert.deepEqual(r.before, ['0.0.0.0', 'network:lan']);
    const d = parseDomainXml(r.xml);
    assert.equal(d.graphics[0]!.tlsPort, 5931);
    assert.deepEqual(
      d.graphics.map((g) => g.listens),
      [[{ type: 'address', address: '::1' }], [{ type: 'address', address: '::1' }], []],
    );
  });

  it('leaves a <graphics> outside <devices> alone (metadata of another tool), and skips comments', () => {
    const xml = `<domain type='kvm'>\n  <name>m</name>\n  <uuid>11111111-2222-3333-4444-555555555555</uuid>\n  <metadata>\n    <app:x xmlns:app='urn:x'><graphics type='vnc' listen='0.0.0.0'/></app:x>\n  </metadata>\n  <!-- <graphics type='vnc' listen='0.0.0.0'/> -->\n  <devices>\n    <graphics type='vnc' listen='0.0.0.0'/>\n  </devices>\n</domain>\n`;
    const r = setGraphicsListen(xml, '127.0.0.1');
    assert.equal(r.xml, xml.replace(`<graphics type='vnc' listen='0.0.0.0'/>\n  </devices>`, `<graphics type='vnc' listen='127.0.0.1'/>\n  </devices>`));
  });

  it("GRAPHICS_EDIT_UNSUPPORTED for listen type none; VNC_NOT_CONFIGURED when there is no console", () => {
    assert.throws(
      () => setGraphicsListen(domain(`    <graphics type='spice'>\n      <listen type='none'/>\n    </graphics>`), '127.0.0.1'),
      (e: unknown) => isVmdeskError(e, 'GRAPHICS_EDIT_UNSUPPORTED'),
    );
    assert.throws(() => setGraphicsListen(domain(''), '127.0.0.1'), (e: unknown) => isVmdeskError(e, 'VNC_NOT_CONFIGURED'));
  });

  it('USAGE for anything but an address literal; LIBVIRT_OUTPUT_INVALID for a cut-off document', () => {
    const xml = fixture('dumpxml-win2019-exposed.xml');
    for (const bad of ['localhost', "127.0.0.1' passwd='x", '1.2.3', 'fe80::1%eth0', '']) {
      assert.throws(() => setGraphicsListen(xml, bad), (e: unknown) => isVmdeskError(e, 'USAGE'), bad);
    }
    assert.throws(() => setGraphicsListen(xml.slice(0, 2000), '127.0.0.1'), (e: unknown) => isVmdeskError(e, 'LIBVIRT_OUTPUT_INVALID'));
  });

  it('normalizeListenAddress takes brackets off IPv6', () => {
    assert.equal(normalizeListenAddress('[::]'), '::');
    assert.equal(normalizeListenAddress(' 0.0.0.0 '), '0.0.0.0');
  });
});
