import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SshChain } from '../../src/ssh/chain.js';
import { planHops } from '../../src/ssh/hop-plan.js';
import { Tunnel } from '../../src/daemon/tunnel.js';
import { parseForwardSpecs } from '../../src/forward/port-spec.js';
import { generateEd25519 } from '../../src/demo/ssh-server.js';
import { freePort } from './free-port.js';
import { echoRoundTrip, knownHostsEntry, sha256, startSite, writeConfig, type Site } from './harness.js';

async function chainTo(site: Site, dest = 'target', extra: ConstructorParameters<typeof SshChain>[1] = {}) {
  const hops = await planHops(dest, { configFile: site.configFile });
  return new SshChain(hops, { agentSocket: 'none', ...extra });
}

describe('SshChain through an in-process jump host', () => {
  let site: Site;
  before(async () => {
    site = await startSite();
  });
  after(async () => {
    await site.close();
  });

  it('opens channels to the target through the jump over one connection per hop', async () => {
    const chain = await chainTo(site);
    await chain.connect();
    assert.deepEqual(
      chain.hopStates().map((h) => [h.label, h.state]),
      [
        ['jump', 'up'],
        ['target', 'up'],
      ],
    );
    const jumpChannelsBefore = site.jump.counters.channels;
    const payloads = Array.from({ length: 20 }, () => randomBytes(64 * 1024));
    const results = await Promise.all(
      payloads.map(async (p) => {
        const stream = await chain.openChannel({ kind: 'tcp', host: '127.0.0.1', port: site.echoPort });
        const chunks: Buffer[] = [];
        stream.on('data', (d: Buffer) => chunks.push(d));
        stream.end(p);
        await new Promise((r) => stream.on('end', r));
        return sha256(Buffer.concat(chunks));
      }),
    );
    assert.deepEqual(results, payloads.map(sha256));
    // A packet of an inner channel, with its SSH framing, fits in one packet of the jump's channel
    // that carries the target's session (else each is split in two on the outer hop).
    const probe = (await chain.openChannel({ kind: 'tcp', host: '127.0.0.1', port: site.echoPort })) as unknown as { outgoing: { packetSize: number }; destroy(): void };
    assert.ok(probe.outgoing.packetSize + 49 <= 32768, `inner packet size ${probe.outgoing.packetSize}`);
    probe.destroy();
    // The 20 channels are channels of the target's session: the jump carried no new channel for them.
    assert.equal(site.jump.counters.channels, jumpChannelsBefore);
    await chain.close();
  });

  it('refuses a changed host key on the second hop before any authentication', async () => {
    const other = generateEd25519('impostor');
    const { utils } = (await import('ssh2')).default;
    const parsed = utils.parseKey(other.publicKey);
    const wire = (Array.isArray(parsed) ? parsed[0] : parsed) as { getPublicSSH(): Buffer };
    const kh = join(site.dir, 'known_hosts_changed');
    writeFileSync(kh, `${knownHostsEntry(site.jump.port, site.jump.hostPublicKey)}\n${knownHostsEntry(site.target.port, wire.getPublicSSH())}\n`);
    const cfg = join(site.dir, 'config_changed');
    writeConfig(cfg, { jumpPort: site.jump.port, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: kh });
    const authBefore = site.target.counters.authAttempts;
    const chain = new SshChain(await planHops('target', { configFile: cfg }), { agentSocket: 'none' });
    await assert.rejects(chain.connect(), (err: { code: string; context: { hop: string } }) => {
      assert.equal(err.code, 'SSH_HOST_KEY_MISMATCH');
      assert.equal(err.context.hop, 'target');
      return true;
    });
    assert.equal(site.target.counters.authAttempts, authBefore);
  });

  it('refuses an unknown host key, and records it with acceptNewHostKey', async () => {
    const kh = join(site.dir, 'known_hosts_partial');
    writeFileSync(kh, `${knownHostsEntry(site.jump.port, site.jump.hostPublicKey)}\n`);
    const cfg = join(site.dir, 'config_partial');
    writeConfig(cfg, { jumpPort: site.jump.port, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: kh });
    const hops = await planHops('target', { configFile: cfg });
    await assert.rejects(new SshChain(hops, { agentSocket: 'none' }).connect(), { code: 'SSH_HOST_KEY_UNKNOWN' });
    const chain = new SshChain(hops, { agentSocket: 'none', acceptNewHostKey: true });
    await chain.connect();
    await chain.close();
    assert.match(readFileSync(kh, 'utf8'), new RegExp(`\\[127\\.0\\.0\\.1\\]:${site.target.port} ssh-ed25519 `));
    // Now known: a plain connect works.
    const again = new SshChain(hops, { agentSocket: 'none' });
    await again.connect();
    await again.close();
  });

  it('names the hop whose authentication failed', async () => {
    const wrong = generateEd25519('wrong');
    const wrongKey = join(site.dir, 'id_wrong');
    writeFileSync(wrongKey, wrong.privateKey, { mode: 0o600 });
    const cfg = join(site.dir, 'config_wrongkey');
    writeConfig(cfg, { jumpPort: site.jump.port, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: site.knownHosts, targetKeyFile: wrongKey });
    const chain = new SshChain(await planHops('target', { configFile: cfg }), { agentSocket: 'none' });
    await assert.rejects(chain.connect(), (err: { code: string; context: { hop: string } }) => {
      assert.equal(err.code, 'SSH_AUTH_FAILED');
      assert.equal(err.context.hop, 'target');
      return true;
    });
  });

  it('reports an unreachable first hop by name', async () => {
    const cfg = join(site.dir, 'config_closed');
    writeConfig(cfg, { jumpPort: 1, targetPort: site.target.port, keyFile: site.keyFile, knownHosts: site.knownHosts });
    const chain = new SshChain(await planHops('target', { configFile: cfg }), { agentSocket: 'none' });
    await assert.rejects(chain.connect(), (err: { code: string; context: { hop: string } }) => {
      assert.equal(err.code, 'SSH_HOP_UNREACHABLE');
      assert.equal(err.context.hop, 'jump');
      return true;
    });
  });

  it('refuses a channel to a closed port with SSH_CHANNEL_REFUSED and stays up', async () => {
    const chain = await chainTo(site);
    await chain.connect();
    await assert.rejects(chain.openChannel({ kind: 'tcp', host: '127.0.0.1', port: 1 }), { code: 'SSH_CHANNEL_REFUSED' });
    assert.equal(chain.isUp(), true);
    await chain.close();
  });

  it('survives a dropped jump host: marks the hop down, reconnects, serves new channels', async () => {
    const chain = await chainTo(site, 'target', { backoffInitialMs: 100, backoffMaxMs: 400, channelWaitMs: 5000 });
    await chain.connect();
    const downSeen = new Promise<void>((r) => chain.once('down', () => r()));
    await site.jump.stop();
    await downSeen;
    const states = chain.hopStates();
    assert.equal(states[0]!.state === 'up', false);
    assert.ok(states[0]!.error, 'the failed hop carries an error');
    await site.jump.start();
    const hash = await (async () => {
      const stream = await chain.openChannel({ kind: 'tcp', host: '127.0.0.1', port: site.echoPort });
      const chunks: Buffer[] = [];
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.end(Buffer.from('after the outage'));
      await new Promise((r) => stream.on('end', r));
      return Buffer.concat(chunks).toString();
    })();
    assert.equal(hash, 'after the outage');
    assert.equal(chain.isUp(), true);
    await chain.close();
  });

  it('forwards many local connections through one chain (Tunnel)', async () => {
    const chain = await chainTo(site);
    await chain.connect();
    const free = await freePort();
    const t2 = new Tunnel({ id: 't2', dest: 'target', chain, specs: parseForwardSpecs([`${free}:127.0.0.1:${site.echoPort}`]) });
    await t2.listen();
    const payloads = Array.from({ length: 50 }, () => randomBytes(128 * 1024));
    const hashes = await Promise.all(payloads.map((p) => echoRoundTrip(free, p)));
    assert.deepEqual(hashes, payloads.map(sha256));
    const stats = t2.info().forwards[0]!;
    assert.equal(stats.total, 50);
    assert.equal(stats.bytesOut, 50 * 128 * 1024);
    assert.equal(stats.bytesIn, 50 * 128 * 1024);
    await t2.close();
    await chain.close();
  });
});

