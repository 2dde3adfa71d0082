/**
 * `vmdesk forward` against real OpenSSH servers, driven as the client user
 * types it: the seed's recipes (one port, the 101-port loop, a target behind
 * the host, a unix socket, an explicit jump), `ps --json`, `stop`, port
 * specs that are wrong, and a local port that is taken.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labDown, labUp, type Lab } from './lab.js';
import { EXIT, assertExit, parseJsonError, psJson, stopAll, tunnelWithPort, vmdeskOk, waitForward } from './cli-contract.js';
import { echoAt, greetingAt, isAccepting, mapLimit, waitAccepting } from './probes.js';
import { PollAbortError, pollUntil } from './poll.js';

let lab: Lab;
before(async () => {
  lab = await labUp();
}, { timeout: 120_000 });
after(() => labDown(), { timeout: 60_000 });
afterEach(() => stopAll(lab), { timeout: 30_000 });

describe('vmdesk forward -d', () => {
  test('one port, like the seed: 5900 reaches 127.0.0.1:5900 on kvmhost', { timeout: 60_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', '5900']);
    assert.equal(await greetingAt(lab, 5900), 'port 5900');
  });

  test('the seed 101-port loop as one range: every local port reaches its own VNC port', { timeout: 120_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', '5900-6000']);
    const ports = Array.from({ length: 101 }, (_, i) => 5900 + i);
    const greetings = await mapLimit(ports, 16, (p) => greetingAt(lab, p));
    assert.deepEqual(greetings, ports.map((p) => `port ${p}`));
    const found = tunnelWithPort(await psJson(lab), 5900);
    assert.ok(found, 'ps --json lists the range tunnel');
    assert.deepEqual(found.tunnel.forwards.map((f) => f.localPort).sort((a, b) => a - b), ports);
  });

  test('LPORT:RHOST:RPORT reaches the echo service', { timeout: 60_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', '7100:127.0.0.1:7000']);
    assert.equal(await echoAt(lab, 7100, 'hello through vmdesk'), 'hello through vmdesk');
  });

  test('LPORT:/path reaches a unix socket on the host', { timeout: 60_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', `7200:${lab.services.unixSocket}`]);
    assert.equal(await echoAt(lab, 7200, 'over unix'), `unix ${lab.services.unixSocket}\nover unix`);
  });

  test('-J with plain user@address hops, no ssh_config aliases', { timeout: 60_000 }, async () => {
    const { jumpOuter, host } = lab.addresses;
    await vmdeskOk(lab, ['forward', '-d', '-J', `labuser@${jumpOuter}`, `labuser@${host}`, '7300:127.0.0.1:7000']);
    assert.equal(await echoAt(lab, 7300, 'via -J'), 'via -J');
    const found = tunnelWithPort(await psJson(lab), 7300);
    assert.ok(found);
    assert.equal(found.tunnel.hops.length, 2, JSON.stringify(found.tunnel.hops));
  });

  test('-J naming a config alias, destination by address', { timeout: 60_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', '-J', 'jump', `labuser@${lab.addresses.host}`, '7301:127.0.0.1:7000']);
    assert.equal(await echoAt(lab, 7301, 'via -J jump'), 'via -J jump');
  });
});

describe('vmdesk ps --json', () => {
  test('shows the chain hop by hop and counts connections and bytes', { timeout: 60_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', '7100:127.0.0.1:7000']);
    const payload = 'x'.repeat(1000);
    assert.equal(await echoAt(lab, 7100, payload), payload);
    const { tunnel, forward } = await waitForward(
      lab,
      7100,
      (f) => f.total >= 1 && f.active === 0 && f.bytesIn >= 1000 && f.bytesOut >= 1000,
      'the echo to show up in the forward counters',
    );
    assert.equal(tunnel.dest, 'kvmhost');
    assert.deepEqual(tunnel.hops.map((h) => h.label), ['jump', 'kvmhost']);
    assert.deepEqual(tunnel.hops.map((h) => h.state), ['up', 'up']);
    assert.equal(forward.bindAddress, '127.0.0.1');
    assert.equal(forward.failed, 0);
    assert.match(JSON.stringify(forward.target), /7000/);
  });

  test('a forward whose target refuses counts a failed connection', { timeout: 60_000 }, async () => {
    // Channels open lazily (like ssh -L), so the forward itself comes up; each connection fails.
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', '7800:127.0.0.1:1']);
    const back = await echoAt(lab, 7800, 'anyone?').catch(() => '');
    assert.equal(back, '', 'a refused channel must close the local connection without data');
    await waitForward(lab, 7800, (f) => f.failed >= 1 && f.active === 0, 'the refused channel to count as failed');
  });

  test('no tunnels: an empty array', { timeout: 30_000 }, async () => {
    assert.deepEqual(await psJson(lab), []);
  });
});

describe('vmdesk stop', () => {
  test('stops a tunnel by id, frees its port, and a second stop exits 9', { timeout: 60_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', '7100:127.0.0.1:7000']);
    const found = tunnelWithPort(await psJson(lab), 7100);
    assert.ok(found);
    await vmdeskOk(lab, ['stop', found.tunnel.id]);
    assert.equal(await isAccepting(lab, 7100), false, 'port 7100 still accepts after stop');
    assertExit(await lab.vmdesk(['stop', found.tunnel.id]), EXIT.NOT_FOUND);
  });

  test('an unknown id exits 9', { timeout: 30_000 }, async () => {
    assertExit(await lab.vmdesk(['stop', 'no-such-tunnel']), EXIT.NOT_FOUND);
  });
});

describe('bad input and taken ports', () => {
  for (const spec of ['70000', '6000-5900', 'abc', '0', '7100:127.0.0.1']) {
    test(`port spec ${JSON.stringify(spec)} is a usage error (exit 2) and opens nothing`, { timeout: 30_000 }, async () => {
      assertExit(await lab.vmdesk(['forward', '-d', 'kvmhost', spec]), EXIT.USAGE);
      assert.deepEqual(await psJson(lab), []);
    });
  }

  test('--json: a bad spec prints one JSON error object on stdout', { timeout: 30_000 }, async () => {
    const r = await lab.vmdesk(['forward', '--json', '-d', 'kvmhost', '70000']);
    assertExit(r, EXIT.USAGE);
    const { error } = parseJsonError(r);
    assert.ok(['PORT_SPEC_INVALID', 'USAGE'].includes(error.code), error.code);
  });

  test('a taken local port exits 3; --auto-port picks another and says which', { timeout: 60_000 }, async () => {
    const squatter = lab.spawnClient(['node', '-e', "require('net').createServer(() => {}).listen(7600, '127.0.0.1', () => console.log('listening'))"]);
    try {
      let exited = false;
      void squatter.exited.then(() => (exited = true));
      await pollUntil(
        () => {
          if (exited) throw new PollAbortError(`the squatter on 7600 exited: ${squatter.stderr()}`);
          return squatter.stdout().includes('listening');
        },
        { timeoutMs: 15_000, what: 'a squatter to listen on 7600' },
      );
      await waitAccepting(lab, 7600);
      const taken = await lab.vmdesk(['forward', '-d', 'kvmhost', '7600:127.0.0.1:7000']);
      assertExit(taken, EXIT.PORT_IN_USE);
      assert.match(taken.stderr, /7600/);
      assert.equal(tunnelWithPort(await psJson(lab), 7600), undefined, 'a failed forward must leave no tunnel');

      const r = await vmdeskOk(lab, ['forward', '-d', '--auto-port', 'kvmhost', '7600:127.0.0.1:7000']);
      const tunnels = await psJson(lab);
      assert.equal(tunnels.length, 1, JSON.stringify(tunnels));
      const port = tunnels[0]?.forwards[0]?.localPort;
      assert.ok(port !== undefined && port !== 7600, `auto port ${port}`);
      assert.match(r.stdout, new RegExp(`\\b${port}\\b`), `stdout must show the real port ${port}`);
      assert.equal(await echoAt(lab, port, 'auto'), 'auto');
    } finally {
      await squatter.stop();
    }
  });
});
