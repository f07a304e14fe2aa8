'use strict';
// Sibyl through the unmodified DataStax Node.js driver (cassandra-driver,
// pinned in package-lock.json). Run: npm test (node --test).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const cassandra = require('cassandra-driver');
const { startNode, live } = require('../sibyl');

const KS = 'node_ks';
const codes = cassandra.types.responseErrorCodes;

describe('sibyld with the Node.js driver', { timeout: 300000 }, () => {
  let node;
  let client;

  before(async () => {
    node = await startNode();
    client = new cassandra.Client({
      contactPoints: [`${node.host}:${node.port}`],
      localDataCenter: 'datacenter1',
      socketOptions: { readTimeout: 20000, connectTimeout: 10000 },
      queryOptions: { consistency: cassandra.types.consistencies.localOne },
    });
    await client.connect();
  });

  after(async () => {
    if (client) await client.shutdown().catch(() => {});
    if (node) {
      const crashed = node.exited ? `sibyld exited during the tests (${node.exitStatus})` : null;
      await node.stop();
      live.delete(node);
      const reports = node.sanitizerReports();
      if (crashed || reports.length) {
        throw new Error([crashed, ...reports].filter(Boolean).join('\n') + '\n' + node.logTail());
      }
      node.remove();
    }
  });

  it('negotiates protocol v4 (node driver starts higher and steps down)', async () => {
    assert.equal(client.controlConnection.protocolVersion, 4);
    const rs = await client.execute("SELECT release_version, partitioner FROM system.local WHERE key = 'local'");
    assert.equal(rs.rows.length, 1);
    assert.match(rs.rows[0].release_version, /^4\./);
    assert.equal(rs.rows[0].partitioner, 'org.apache.cassandra.dht.Murmur3Partitioner');
    const hosts = client.getState().getConnectedHosts();
    assert.equal(hosts.length, 1);
    assert.equal(hosts[0].datacenter, 'datacenter1');
  });

  it('creates a keyspace and a table', async () => {
    await client.execute(`CREATE KEYSPACE ${KS} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    await client.execute(`CREATE TABLE ${KS}.readings (sensor text, day date, ts timestamp, value double, note text,
                          PRIMARY KEY ((sensor, day), ts)) WITH CLUSTERING ORDER BY (ts DESC)`);
    await client.metadata.refreshKeyspace(KS);
    const ks = client.metadata.keyspaces[KS];
    assert.ok(ks, 'keyspace visible in metadata');
    assert.match(ks.strategy, /SimpleStrategy$/);
    assert.equal(String(ks.strategyOptions.replication_factor), '1');
  });

  it('exposes table metadata through client.metadata.getTable', async () => {
    const t = await client.metadata.getTable(KS, 'readings');
    assert.ok(t, 'table metadata');
    assert.deepEqual(t.partitionKeys.map((c) => c.name), ['sensor', 'day']);
    assert.deepEqual(t.clusteringKeys.map((c) => c.name), ['ts']);
    assert.deepEqual(t.clusteringOrder, ['DESC']);
    assert.deepEqual(t.columns.map((c) => c.name).sort(), ['day', 'note', 'sensor', 'ts', 'value']);
    const byName = Object.fromEntries(t.columns.map((c) => [c.name, c.type.code]));
    assert.equal(byName.value, cassandra.types.dataTypes.double);
    assert.equal(byName.ts, cassandra.types.dataTypes.timestamp);
  });

  it('inserts and selects with prepared statements', async () => {
    const day = cassandra.types.LocalDate.fromString('2024-03-01');
    const ins = `INSERT INTO ${KS}.readings (sensor, day, ts, value, note) VALUES (?, ?, ?, ?, ?)`;
    for (let i = 0; i < 30; i++) {
      await client.execute(ins, ['s1', day, new Date(Date.UTC(2024, 2, 1, 0, i)), i * 1.5, `n${i}`], { prepare: true });
    }
    const rs = await client.execute(
      `SELECT ts, value, note FROM ${KS}.readings WHERE sensor = ? AND day = ? AND ts >= ? LIMIT 3`,
      ['s1', day, new Date(Date.UTC(2024, 2, 1, 0, 10))], { prepare: true });
    assert.deepEqual(rs.rows.map((r) => r.value), [43.5, 42, 40.5]);       // DESC clustering order
    assert.ok(rs.rows[0].ts instanceof Date);
    assert.equal(rs.rows[0].ts.getTime(), Date.UTC(2024, 2, 1, 0, 29));
    assert.deepEqual(rs.columns.map((c) => c.name), ['ts', 'value', 'note']);
  });

  it('pages with fetchSize and pageState', async () => {
    const q = `SELECT value FROM ${KS}.readings WHERE sensor = 's1' AND day = '2024-03-01'`;
    const seen = [];
    let pageState;
    let pagesRead = 0;
    do {
      const rs = await client.execute(q, [], { prepare: true, fetchSize: 7, pageState });
      assert.ok(rs.rows.length <= 7);
      seen.push(...rs.rows.map((r) => r.value));
      pageState = rs.pageState;
      pagesRead++;
      assert.ok(pagesRead < 100, 'paging does not end');
    } while (pageState);
    assert.ok(pagesRead >= 5, `expected at least 5 pages, got ${pagesRead}`);
    assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => (29 - i) * 1.5));
  });

  it('pages automatically with eachRow (autoPage)', async () => {
    const values = await new Promise((resolve, reject) => {
      const got = [];
      client.eachRow(`SELECT value FROM ${KS}.readings WHERE sensor = 's1' AND day = '2024-03-01'`, [],
        { prepare: true, fetchSize: 4, autoPage: true },
        (n, row) => got.push(row.value),
        (err) => (err ? reject(err) : resolve(got)));
    });
    assert.equal(values.length, 30);
  });

  it('runs logged and unlogged batches, prepared and not', async () => {
    await client.execute(`CREATE TABLE ${KS}.kv (k text PRIMARY KEY, v int)`);
    await client.batch([
      { query: `INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, params: ['a', 1] },
      { query: `INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, params: ['b', 2] },
      { query: `UPDATE ${KS}.kv SET v = ? WHERE k = ?`, params: [3, 'c'] },
    ], { prepare: true });
    await client.batch([
      `INSERT INTO ${KS}.kv (k, v) VALUES ('d', 4)`,
      `DELETE FROM ${KS}.kv WHERE k = 'a'`,
    ], { logged: false });
    const rs = await client.execute(`SELECT k, v FROM ${KS}.kv`);
    const got = Object.fromEntries(rs.rows.map((r) => [r.k, r.v]));
    assert.deepEqual(got, { b: 2, c: 3, d: 4 });
  });

  it('sends named values on unprepared queries', async () => {
    await client.execute(`CREATE TABLE ${KS}.named (k text PRIMARY KEY, v text)`);
    await client.execute(`INSERT INTO ${KS}.named (k, v) VALUES (:k, :v)`, { k: 'x', v: 'named' }, { prepare: false });
    const rs = await client.execute(`SELECT v FROM ${KS}.named WHERE k = :k`, { k: 'x' }, { prepare: true });
    assert.equal(rs.first().v, 'named');
  });

  it('reports errors with the right codes', async () => {
    await assert.rejects(client.execute('SELEC * FROM system.local'), (err) => {
      assert.ok(err instanceof cassandra.errors.ResponseError);
      assert.equal(err.code, codes.syntaxError);
      assert.match(err.message, /line 1:/);
      return true;
    });
    await assert.rejects(client.execute(`SELECT * FROM ${KS}.nosuchtable`), (err) => {
      assert.equal(err.code, codes.invalid);
      assert.match(err.message, /nosuchtable/);
      return true;
    });
    await assert.rejects(client.execute(`INSERT INTO ${KS}.kv (k, v) VALUES ('e', 'notanint')`), (err) => {
      assert.equal(err.code, codes.invalid);
      assert.match(err.message, /Invalid STRING constant \(notanint\) for "v" of type int/);
      return true;
    });
    await assert.rejects(
      client.execute(`CREATE KEYSPACE ${KS} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`),
      (err) => {
        assert.equal(err.code, codes.alreadyExists);
        assert.equal(err.keyspace, KS);
        return true;
      });
    // The failed statements wrote nothing and the client still works.
    const rs = await client.execute(`SELECT COUNT(*) FROM ${KS}.kv`);
    assert.equal(rs.first().count.toNumber(), 3);
  });

  it('sees a table created by another client (schema events)', async () => {
    const other = new cassandra.Client({
      contactPoints: [`${node.host}:${node.port}`], localDataCenter: 'datacenter1',
    });
    await other.connect();
    try {
      await other.execute(`CREATE TABLE ${KS}.from_other (k int PRIMARY KEY, v text)`);
      const deadline = Date.now() + 15000;
      let t = null;
      while (!t && Date.now() < deadline) {
        t = await client.metadata.getTable(KS, 'from_other');
        if (!t) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(t, 'new table not visible to the first client');
      assert.deepEqual(t.partitionKeys.map((c) => c.name), ['k']);
    } finally {
      await other.shutdown();
    }
  });
});
