import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { MAX_RANGE_PORTS, formatForwardSpec, parseForwardSpecs } from './port-spec.js';
import type { ForwardSpec } from './types.js';

function tcp(bindAddress: string, localPort: number, host: string, port: number, source: string): ForwardSpec {
  return { bindAddress, localPort, target: { kind: 'tcp', host, port }, source };
}

function unix(bindAddress: string, localPort: number, path: string, source: string): ForwardSpec {
  return { bindAddress, localPort, target: { kind: 'unix', path }, source };
}

function assertInvalid(specs: string[], opts?: { bindAddress?: string }): void {
  assert.throws(
    () => parseForwardSpecs(specs, opts),
    (err: unknown) => isVmdeskError(err, 'PORT_SPEC_INVALID'),
    `expected PORT_SPEC_INVALID for ${JSON.stringify(specs)}`,
  );
}

describe('parseForwardSpecs: accepted forms', () => {
  const cases: [string, ForwardSpec[]][] = [
    ['5900', [tcp('127.0.0.1', 5900, '127.0.0.1', 5900, '5900')]],
    ['05900', [tcp('127.0.0.1', 5900, '127.0.0.1', 5900, '05900')]],
    ['65535', [tcp('127.0.0.1', 65535, '127.0.0.1', 65535, '65535')]],
    ['1', [tcp('127.0.0.1', 1, '127.0.0.1', 1, '1')]],
    ['  5900 ', [tcp('127.0.0.1', 5900, '127.0.0.1', 5900, '5900')]],
    [
      '5900-5902',
      [
        tcp('127.0.0.1', 5900, '127.0.0.1', 5900, '5900-5902'),
        tcp('127.0.0.1', 5901, '127.0.0.1', 5901, '5900-5902'),
        tcp('127.0.0.1', 5902, '127.0.0.1', 5902, '5900-5902'),
      ],
    ],
    ['5900-5900', [tcp('127.0.0.1', 5900, '127.0.0.1', 5900, '5900-5900')]],
    ['8080:10.0.0.5:80', [tcp('127.0.0.1', 8080, '10.0.0.5', 80, '8080:10.0.0.5:80')]],
    ['8080:vm-1.lab:80', [tcp('127.0.0.1', 8080, 'vm-1.lab', 80, '8080:vm-1.lab:80')]],
    ['8080:localhost:80', [tcp('127.0.0.1', 8080, 'localhost', 80, '8080:localhost:80')]],
    ['0.0.0.0:8080:h:80', [tcp('0.0.0.0', 8080, 'h', 80, '0.0.0.0:8080:h:80')]],
    ['*:8080:h:80', [tcp('0.0.0.0', 8080, 'h', 80, '*:8080:h:80')]],
    [':8080:h:80', [tcp('0.0.0.0', 8080, 'h', 80, ':8080:h:80')]],
    ['localhost:8080:h:80', [tcp('localhost', 8080, 'h', 80, 'localhost:8080:h:80')]],
    ['192.168.1.2:8080:h:80', [tcp('192.168.1.2', 8080, 'h', 80, '192.168.1.2:8080:h:80')]],
    ['[::1]:5900:[fe80::1]:22', [tcp('::1', 5900, 'fe80::1', 22, '[::1]:5900:[fe80::1]:22')]],
    ['5900:[fe80::1%eth0]:5900', [tcp('127.0.0.1', 5900, 'fe80::1%eth0', 5900, '5900:[fe80::1%eth0]:5900')]],
    ['[::]:5900:h:5900', [tcp('::', 5900, 'h', 5900, '[::]:5900:h:5900')]],
    ['[127.0.0.1]:5900:h:5900', [tcp('127.0.0.1', 5900, 'h', 5900, '[127.0.0.1]:5900:h:5900')]],
    ['5900:/run/vnc.sock', [unix('127.0.0.1', 5900, '/run/vnc.sock', '5900:/run/vnc.sock')]],
    ['*:5900:/run/vnc.sock', [unix('0.0.0.0', 5900, '/run/vnc.sock', '*:5900:/run/vnc.sock')]],
    ['[::1]:5900:/run/vnc.sock', [unix('::1', 5900, '/run/vnc.sock', '[::1]:5900:/run/vnc.sock')]],
    ['5900:[/run/with:colon.sock]', [unix('127.0.0.1', 5900, '/run/with:colon.sock', '5900:[/run/with:colon.sock]')]],
  ];
  for (const [spec, expected] of cases) {
    it(spec, () => assert.deepEqual(parseForwardSpecs([spec]), expected));
  }

  it('an empty list gives no forwards', () => assert.deepEqual(parseForwardSpecs([]), []));

  it('the bindAddress option applies to forms without BIND', () => {
    assert.deepEqual(parseForwardSpecs(['5900', '8080:h:80', '[::1]:9000:h:90'], { bindAddress: '0.0.0.0' }), [
      tcp('0.0.0.0', 5900, '127.0.0.1', 5900, '5900'),
      tcp('0.0.0.0', 8080, 'h', 80, '8080:h:80'),
      tcp('::1', 9000, 'h', 90, '[::1]:9000:h:90'),
    ]);
    assert.equal(parseForwardSpecs(['5900'], { bindAddress: '*' })[0]?.bindAddress, '0.0.0.0');
    assert.equal(parseForwardSpecs(['5900'], { bindAddress: '[::1]' })[0]?.bindAddress, '::1');
  });

  it('expands the seed recipe 5900-6000 into 101 forwards, same port both sides', () => {
    const specs = parseForwardSpecs(['5900-6000']);
    assert.equal(specs.length, 101);
    specs.forEach((s, i) => {
      assert.equal(s.localPort, 5900 + i);
      assert.deepEqual(s.target, { kind: 'tcp', host: '127.0.0.1', port: 5900 + i });
    });
  });

  it(`accepts a range of exactly ${MAX_RANGE_PORTS} ports`, () => {
    assert.equal(parseForwardSpecs([`10000-${10000 + MAX_RANGE_PORTS - 1}`]).length, MAX_RANGE_PORTS);
  });

  it('keeps several specs in order and allows one port on different addresses', () => {
    const specs = parseForwardSpecs(['127.0.0.1:5900:h:1', '192.168.1.2:5900:h:2', '5901', '[::1]:5900:h:3']);
    assert.deepEqual(
      specs.map((s) => `${s.bindAddress}/${s.localPort}`),
      ['127.0.0.1/5900', '192.168.1.2/5900', '127.0.0.1/5901', '::1/5900'],
    );
  });

  it('formats a spec for messages', () => {
    const [a, b] = parseForwardSpecs(['[::1]:5900:[fe80::1]:22', '5901:/run/x.sock']);
    assert.ok(a && b);
    assert.equal(formatForwardSpec(a), '[::1]:5900 -> [fe80::1]:22');
    assert.equal(formatForwardSpec(b), '127.0.0.1:5901 -> /run/x.sock');
  });
});

describe('parseForwardSpecs: rejected specs (PORT_SPEC_INVALID)', () => {
  const cases: [string, string[]][] = [
    ['empty', ['']],
    ['blank', ['   ']],
    ['port 0', ['0']],
    ['port 0 in a range', ['0-10']],
    ['port above 65535', ['65536']],
    ['huge port', ['99999999999999999999']],
    ['remote port 0', ['8080:h:0']],
    ['remote port too big', ['8080:h:70000']],
    ['local port 0 in the long form', ['0:h:80']],
    ['non-numeric', ['vnc']],
    ['junk digits', ['59a0']],
    ['negative', ['-5900']],
    ['decimal', ['5900.5']],
    ['hex', ['0x1700']],
    ['reversed range', ['6000-5900']],
    ['range with three parts', ['5900-5910-5920']],
    ['open range', ['5900-']],
    ['range too large', [`1-${MAX_RANGE_PORTS + 1}`]],
    ['everything range', ['1-65535']],
    ['range above 65535', ['65530-65540']],
    ['range with a remote host', ['5900-5910:h:5900']],
    ['range as remote port', ['5900:h:5900-5910']],
    ['range with a socket', ['5900-5910:/run/x.sock']],
    ['five fields', ['1:2:3:4:5']],
    ['unbracketed IPv6 bind', ['::1:5900:h:5900']],
    ['unbracketed IPv6 remote', ['5900:fe80::1:5900']],
    ['two fields without a path', ['5900:h']],
    ['BIND:PORT without target', ['127.0.0.1:5900']],
    ['empty remote host', ['8080::80']],
    ['empty remote host with bind', ['127.0.0.1:8080::80']],
    ['empty remote port', ['8080:h:']],
    ['empty local port', [':h:80']],
    ['invalid remote host', ['8080:h o:80']],
    ['remote host starting with a dash', ['8080:-oProxyCommand=x:80']],
    ['invalid bind', ['b@d:8080:h:80']],
    ['relative unix path', ['5900:run/vnc.sock']],
    ['relative unix path with ./', ['5900:./vnc.sock']],
    ['home-relative unix path', ['5900:~/vnc.sock']],
    ['relative unix path with bind', ['*:5900:run/vnc.sock']],
    ['bare path', ['/run/vnc.sock']],
    ['local unix socket', ['/tmp/l.sock:h:80']],
    ['socket with four fields', ['a:5900:h:/x.sock']],
    ['unclosed bracket', ['[::1:5900:h:22']],
    ['text after bracket', ['[::1]x:5900:h:22']],
    ['bracket inside a field', ['59[00]']],
    ['bracketed port', ['[5900]']],
    ['bracketed remote port', ['5900:h:[22]']],
    ['port with spaces', ['59 00']],
    ['remote host that is a path', ['5900:/a:22']],
  ];
  for (const [name, specs] of cases) {
    it(`${name}: ${JSON.stringify(specs)}`, () => assertInvalid(specs));
  }

  it('rejects an invalid bindAddress option', () => assertInvalid(['5900'], { bindAddress: 'not an address' }));

  it('names the spec and the problem in the message, and keeps the spec in context', () => {
    try {
      parseForwardSpecs(['5900', '6000-5900']);
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(isVmdeskError(err, 'PORT_SPEC_INVALID'));
      assert.match(err.message, /"6000-5900"/);
      assert.match(err.message, /reversed/);
      assert.equal(err.context['spec'], '6000-5900');
      assert.ok(err.hint);
    }
  });
});

describe('parseForwardSpecs: overlapping local ports', () => {
  const cases: [string, string[]][] = [
    ['the same port twice', ['5900', '5900']],
    ['a port inside a range', ['5900-6000', '5950']],
    ['two overlapping ranges', ['5900-5950', '5950-6000']],
    ['bare and long form', ['5900', '5900:other:22']],
    ['explicit bind equal to the default', ['127.0.0.1:5900:h:1', '5900']],
    ['0.0.0.0 and *', ['0.0.0.0:5900:h:1', '*:5900:h:2']],
    ['wildcard over a specific address', ['*:5900:h:1', '192.168.1.2:5900:h:2']],
    ['specific address under a wildcard', ['127.0.0.1:5900:h:1', '0.0.0.0:5900:h:2']],
    ['IPv6 wildcard', ['[::]:5900:h:1', '5900']],
    ['two spellings of ::1', ['[::1]:5900:h:1', '[0:0:0:0:0:0:0:1]:5900:h:2']],
    ['localhost and 127.0.0.1', ['localhost:5900:h:1', '5900']],
    ['a unix target and a tcp target', ['5900:/run/a.sock', '5900']],
  ];
  for (const [name, specs] of cases) {
    it(`${name}: ${JSON.stringify(specs)}`, () => assertInvalid(specs));
  }

  it('names both specs and the taken address', () => {
    try {
      parseForwardSpecs(['5900-6000', '0.0.0.0:5950:h:1']);
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(isVmdeskError(err, 'PORT_SPEC_INVALID'));
      assert.equal(err.context['port'], 5950);
      assert.equal(err.context['other'], '5900-6000');
      assert.match(err.message, /5950/);
    }
  });

  it('applies the bindAddress option before comparing', () => {
    assertInvalid(['5900', '*:5900:h:1'], { bindAddress: '10.0.0.1' });
    assert.equal(parseForwardSpecs(['5900', '10.0.0.2:5900:h:1'], { bindAddress: '10.0.0.1' }).length, 2);
  });
});
