import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { isExposed, isLoopback, parseDomainXml } from './domain-xml.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

describe('parseDomainXml on real dumpxml output (libvirt 9.0)', () => {
  it('win2016: VNC on loopback with autoport and a keymap, one NIC on the default network', () => {
    const d = parseDomainXml(fixture('dumpxml-win2016-loopback.xml'));
    assert.equal(d.name, 'win2016');
    assert.equal(d.uuid, '766d6400-6c61-4b00-8000-000000002016');
    assert.equal(d.id, 3);
    assert.deepEqual(d.graphics, [
      { type: 'vnc', port: 5900, autoport: true, listens: [{ type: 'address', address: '127.0.0.1' }], hasPassword: false, keymap: 'en-us' },
    ]);
    assert.deepEqual(d.interfaces, [{ mac: '52:54:00:fc:b9:e6', type: 'network', source: 'default', bridge: 'virbr0', targetDev: 'vnet0', model: 'e1000' }]);
    assert.equal(isExposed(d.graphics[0]!), false);
  });

  it('win2016 --inactive: port -1 means no port yet, the listen has no address', () => {
    const d = parseDomainXml(fixture('dumpxml-win2016-inactive.xml'));
    assert.equal(d.id, undefined);
    assert.deepEqual(d.graphics, [{ type: 'vnc', autoport: true, listens: [{ type: 'address' }], hasPassword: false, keymap: 'en-us' }]);
    assert.deepEqual(d.interfaces, [{ mac: '52:54:00:fc:b9:e6', type: 'network', source: 'default', model: 'e1000' }]);
  });

  it('win2019: listen 0.0.0.0 is exposed', () => {
    const g = parseDomainXml(fixture('dumpxml-win2019-exposed.xml')).graphics[0]!;
    assert.deepEqual(g.listens, [{ type: 'address', address: '0.0.0.0' }]);
    assert.equal(g.port, 5901);
    assert.equal(isExposed(g), true);
  });

  it('rhel8: plain dumpxml hides the passwd attribute, so a password is invisible without --security-info', () => {
    assert.equal(parseDomainXml(fixture('dumpxml-rhel8-passwd.xml')).graphics[0]!.hasPassword, false);
  });

  it('rhel8 --security-info: hasPassword, and the value is nowhere in the result', () => {
    const xml = fixture('dumpxml-rhel8-passwd-security-info.xml');
    assert.match(xml, /passwd='Lab-pw1'/);
    const d = parseDomainXml(xml);
    assert.equal(d.graphics[0]!.hasPassword, true);
    assert.doesNotMatch(JSON.stringify(d), /Lab-pw1/);
  });

  it('debian12: VNC on a unix socket (socket= attribute) is not exposed and has no port', () => {
    const g = parseDomainXml(fixture('dumpxml-debian12-socket.xml')).graphics[0]!;
    const path = '/run/vmd-libvirt/vnc/766d6400-6c61-4b00-8000-000000000012.sock';
    assert.deepEqual(g, { type: 'vnc', autoport: false, listens: [{ type: 'socket', socket: path }], socket: path, hasPassword: false });
    assert.equal(isExposed(g), false);
  });

  it("a hostile name and the socket path libvirt derived from it (with a ') come back exactly", () => {
    const d = parseDomainXml(fixture('dumpxml-hostile-socket-listen.xml'));
    assert.equal(d.name, `x'; touch pwned; echo '`);
    assert.equal(d.graphics[0]!.socket, `/var/lib/libvirt/qemu/domain-7-x'; touch pwned; ech/vnc.sock`);
  });

  it('$(touch pwned2): a network listen resolves to the bridge address and counts as exposed', () => {
    const d = parseDomainXml(fixture('dumpxml-hostile-network-listen.xml'));
    assert.equal(d.name, '$(touch pwned2)');
    assert.deepEqual(d.graphics[0]!.listens, [{ type: 'network', address: '192.168.122.1', network: 'default' }]);
    assert.equal(isExposed(d.graphics[0]!), true);
  });

  it('win2012 (shut off) and -rf (spice, shut off)', () => {
    const off = parseDomainXml(fixture('dumpxml-win2012-shutoff.xml'));
    assert.equal(off.name, 'win2012');
    assert.equal(off.graphics[0]!.port, undefined);
    const spice = parseDomainXml(fixture('dumpxml-dash-spice-shutoff.xml'));
    assert.equal(spice.name, '-rf');
    assert.deepEqual(spice.graphics, [{ type: 'spice', port: 5930, autoport: false, listens: [{ type: 'address', address: '127.0.0.1' }], hasPassword: false }]);
  });

  it('keeps numeric-looking names and surrounding spaces as written', () => {
    const xml = fixture('dumpxml-win2012-shutoff.xml');
    assert.equal(parseDomainXml(xml.replace('<name>win2012</name>', '<name>0123</name>')).name, '0123');
    assert.equal(parseDomainXml(xml.replace('<name>win2012</name>', '<name>1e5</name>')).name, '1e5');
    assert.equal(parseDomainXml(xml.replace('<name>win2012</name>', '<name> my vm </name>')).name, ' my vm ');
    assert.equal(parseDomainXml(xml.replace('<name>win2012</name>', '<name>a &amp; &lt;b&gt;</name>')).name, 'a & <b>');
  });

  it('uses the legacy listen= attribute when there is no <listen> child', () => {
    const xml = fixture('dumpxml-win2019-exposed.xml').replace(/\s*<listen type='address' address='0.0.0.0'\/>/, '');
    assert.deepEqual(parseDomainXml(xml).graphics[0]!.listens, [{ type: 'address', address: '0.0.0.0' }]);
  });

  it('rejects what is not a domain with LIBVIRT_OUTPUT_INVALID', () => {
    for (const bad of ['', 'error: failed to get domain', '<network><name>x</name></network>', '<domain><uuid>u</uuid></domain>', '<domain><name>a</name']) {
      assert.throws(() => parseDomainXml(bad), (e: unknown) => isVmdeskError(e, 'LIBVIRT_OUTPUT_INVALID'), bad);
    }
  });
});

describe('isLoopback / isExposed', () => {
  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
    for (const a of ['0.0.0.0', '::', '192.168.0.2', '10.1.1.1', 'fe80::1', '128.0.0.1']) assert.equal(isLoopback(a), false, a);
  });

  it('calls 0.0.0.0, :: and any non-loopback address exposed; sockets and none are not', () => {
    const g = (listens: { type: string; address?: string }[]) => ({ type: 'vnc', autoport: true, listens, hasPassword: false });
    assert.equal(isExposed(g([{ type: 'address', address: '::' }])), true);
    assert.equal(isExposed(g([{ type: 'address', address: '192.168.0.2' }])), true);
    assert.equal(isExposed(g([{ type: 'address', address: '127.0.0.1' }, { type: 'address', address: '10.0.0.1' }])), true);
    assert.equal(isExposed(g([{ type: 'none' }])), false);
    assert.equal(isExposed(g([{ type: 'socket' }])), false);
    assert.equal(isExposed(g([])), false);
  });
});

describe('parseDomainXml on cut-off output', () => {
  it('refuses a document without its end tag', () => {
    const xml = readFileSync(new URL('../../fixtures/libvirt/dumpxml-win2012-shutoff.xml', import.meta.url), 'utf8');
    assert.throws(() => parseDomainXml(xml.slice(0, xml.indexOf('</devices>'))), (e: unknown) => isVmdeskError(e, 'LIBVIRT_OUTPUT_INVALID'));
  });
});
