'use strict';
// A 4-node cluster through the Node.js driver: given one contact point it
// discovers every node with its DC and rack, and its token-aware replicas
// for a key (client.getReplicas) are the node's own (admin /endpoints), for
// NetworkTopologyStrategy over DCs and racks and for SimpleStrategy.
// Every member is stopped by pid in after(), also when a start fails.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const cassandra = require('cassandra-driver');
const { startCluster, adminGet, waitUntil, live } = require('../sibyl');

// dc1 has two racks for its rf 2, so its two replicas of a key are on both
// racks; dc2 has one node.
const LAYOUT = [
  { dc: 'dc1', rack: 'rack1' }, { dc: 'dc1', rack: 'rack2' },
  { dc: 'dc1', rack: 'rack1' }, { dc: 'dc2', rack: 'rack1' },
];
const KEYSPACES = {
  nts_ks: "{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 1}",
  simple_ks: "{'class': 'SimpleStrategy', 'replication_factor': 2}",
};
const KEYS = 40;

function intKey(k) {
  const b = Buffer.alloc(4);
  b.writeInt32BE(k);
  return b;
}

describe('a 4-node cluster with the Node.js driver', { timeout: 300000 }, () => {
  const members = [];
  let client;

  before(async () => {
    await startCluster(LAYOUT, { gossip_interval_ms: 200, phi_convict_threshold: 6, num_tokens: 8 }, members);
    const hosts = members.map((n) => n.host).sort();
    for (const n of members) {
      await waitUntil(async () => {
        const st = (await adminGet(n, 'status')).nodes;
        return st.length === members.length && st.every((m) => m.status === 'U' && m.state === 'N')
          && st.map((m) => m.address).sort().join() === hosts.join();
      }, `${n.host} sees every member UN`, 60000);
    }
    client = new cassandra.Client({
      contactPoints: [`${members[1].host}:${members[1].port}`],
      localDataCenter: 'dc1',
      socketOptions: { readTimeout: 20000, connectTimeout: 10000 },
    });
    await client.connect();
  });

  after(async () => {
    if (client) await client.shutdown().catch(() => {});
    const problems = [];
    for (const n of members) {
      if (n.exited) problems.push(`${n.host}: sibyld exited during the tests (${n.exitStatus})`);
      await n.stop();
      live.delete(n);
      for (const r of n.sanitizerReports()) problems.push(`${n.host}: ${r}`);
    }
    if (problems.length) throw new Error(problems.join('\n') + '\n' + members.map((n) => n.logTail()).join('\n'));
    for (const n of members) n.remove();
  });

  it('discovers every node, with its DC and rack, from one contact point', async () => {
    await waitUntil(() => client.hosts.length === members.length, 'the driver finds every host');
    const seen = Object.fromEntries(client.hosts.values().map((h) => [h.address.split(':')[0], `${h.datacenter}/${h.rack}`]));
    const want = Object.fromEntries(members.map((n, i) => [n.host, `${LAYOUT[i].dc}/${LAYOUT[i].rack}`]));
    assert.deepEqual(seen, want);
  });

  it('computes the same replicas for a key as the node does', async () => {
    for (const [ks, repl] of Object.entries(KEYSPACES)) {
      await client.execute(`CREATE KEYSPACE ${ks} WITH replication = ${repl}`);
      await client.execute(`CREATE TABLE ${ks}.t (k int PRIMARY KEY, v text)`);
    }
    const contact = members[1];
    for (const ks of Object.keys(KEYSPACES)) {
      await waitUntil(() => adminGet(contact, `endpoints/${ks}/t/0`), `${ks}.t on ${contact.host}`);
      await client.metadata.refreshKeyspace(ks);
      assert.ok(client.metadata.keyspaces[ks], `${ks} in the driver's metadata`);
      for (let k = 0; k < KEYS; k++) {
        const mine = (await adminGet(contact, `endpoints/${ks}/t/${k}`)).endpoints;
        const theirs = client.getReplicas(ks, intKey(k)).map((h) => h.address.split(':')[0]);
        assert.deepEqual([...theirs].sort(), [...mine].sort(), `${ks} key ${k}`);
        if (ks === 'nts_ks') {
          const racks = mine.filter((a) => a !== '127.0.0.4').map((a) => LAYOUT[Number(a.split('.')[3]) - 1].rack);
          assert.deepEqual(racks.sort(), ['rack1', 'rack2'], `dc1 replicas of key ${k} on both racks`);
        }
      }
    }
  });
});
