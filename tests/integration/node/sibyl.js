'use strict';
// Start and stop a real sibyld for the Node.js driver tests (the same
// contract as ../sibyl_harness.py): a temp dir with a generated YAML config,
// a free loopback port, bounded readiness polling, kill by pid, and a
// sanitizer check of the node's stderr log.
//
// Env: SIBYL_BIN (default build-asan/node/sibyld, then build/node/sibyld),
//      SIBYL_TEST_ADDRESS (default 127.0.0.1).

const childProcess = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..');
const START_TIMEOUT_MS = 20000;
const POLL_MS = 50;
const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer'];

function findBinary() {
  if (process.env.SIBYL_BIN) {
    fs.accessSync(process.env.SIBYL_BIN, fs.constants.X_OK);   // throws with the path if missing
    return process.env.SIBYL_BIN;
  }
  for (const d of ['build-asan', 'build']) {
    const p = path.join(REPO, d, 'node', 'sibyld');
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch (e) { /* next */ }
  }
  throw new Error('sibyld not found: build it or set SIBYL_BIN');
}

// A port that was free a moment ago, picked at random below the kernel's
// ephemeral range (32768 and up): a port the kernel hands out itself can be
// taken again by any outgoing connection before the node binds it.
function tryListen(host, port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

async function freePort(host) {
  for (let i = 0; i < 2000; i++) {
    const port = 10000 + Math.floor(Math.random() * 22000);
    if (await tryListen(host, port)) return port;
  }
  throw new Error('no free port below 32000 on ' + host);
}

function canConnect(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class SibylNode {
  // opts: config (extra yaml keys, flat), and for a cluster member host,
  // ports ([native, storage, admin], the same on every member's address)
  // and seeds ("a,b").
  constructor(opts = {}) {
    this.host = opts.host || process.env.SIBYL_TEST_ADDRESS || '127.0.0.1';
    this.binary = findBinary();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sibyl-node-test-'));
    this.extra = opts.config || {};
    this.seeds = opts.seeds || null;
    if (opts.ports) [this.port, this.storagePort, this.adminPort] = opts.ports;
    this.proc = null;
    this.logs = [];
  }

  async start() {
    if (!this.port) {
      const ports = [];
      while (ports.length < 3) {
        const p = await freePort(this.host);
        if (!ports.includes(p)) ports.push(p);
      }
      [this.port, this.storagePort, this.adminPort] = ports;
    }
    const q = (s) => JSON.stringify(String(s));
    const cfg = {
      cluster_name: q('Sibyl Node Test'),
      listen_address: q(this.host),
      rpc_address: q(this.host),
      native_transport_port: this.port,
      storage_port: this.storagePort,
      admin_port: this.adminPort,
      admin_address: q(this.host),
      commitlog_directory: q(path.join(this.dir, 'commitlog')),
      hints_directory: q(path.join(this.dir, 'hints')),
      ...this.extra,
    };
    const lines = Object.entries(cfg).map(([k, v]) => `${k}: ${v}`);
    lines.push('data_file_directories:', `    - ${q(path.join(this.dir, 'data'))}`);
    if (this.seeds) {
      lines.push('seed_provider:', '    - class_name: org.apache.cassandra.locator.SimpleSeedProvider',
        '      parameters:', `          - seeds: ${q(this.seeds)}`);
    }
    this.configPath = path.join(this.dir, 'sibyl.yaml');
    fs.writeFileSync(this.configPath, lines.join('\n') + '\n');

    const log = path.join(this.dir, `sibyld-${this.logs.length + 1}.log`);
    this.logs.push(log);
    const fd = fs.openSync(log, 'w');
    const env = {
      ...process.env,
      ASAN_OPTIONS: 'halt_on_error=1:detect_leaks=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    };
    this.proc = childProcess.spawn(this.binary, ['--config', this.configPath],
      { cwd: this.dir, stdio: ['ignore', fd, fd], env });
    fs.closeSync(fd);
    this.exited = false;
    this.proc.once('exit', (code, sig) => { this.exited = true; this.exitStatus = code ?? sig; });
    this.proc.once('error', (e) => { this.exited = true; this.exitStatus = e.message; });

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (this.exited) throw new Error(`sibyld exited (${this.exitStatus}) before listening\n${this.logTail()}`);
      if (await canConnect(this.host, this.port)) return this;
      if (Date.now() > deadline) {
        this.kill('SIGKILL');
        throw new Error(`sibyld did not listen on ${this.host}:${this.port} in time\n${this.logTail()}`);
      }
      await sleep(POLL_MS);
    }
  }

  kill(signal) {
    if (this.proc && !this.exited) {
      try { process.kill(this.proc.pid, signal); } catch (e) { /* already gone */ }
    }
  }

  async stop() {
    if (!this.proc) return;
    this.kill('SIGTERM');
    const deadline = Date.now() + 10000;
    while (!this.exited && Date.now() < deadline) await sleep(POLL_MS);
    if (!this.exited) {
      this.kill('SIGKILL');
      const d2 = Date.now() + 5000;
      while (!this.exited && Date.now() < d2) await sleep(POLL_MS);
    }
  }

  // Deletes the node's directory (data, commitlog, logs) once it has
  // stopped, unless SIBYL_KEEP_DIRS is set: every start makes one in the
  // system temp dir, and they were never removed.
  remove() {
    if (process.env.SIBYL_KEEP_DIRS || (this.proc && !this.exited)) return;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(n = 4000) {
    const p = this.logs[this.logs.length - 1];
    let t = '';
    try { t = fs.readFileSync(p, 'utf8'); } catch (e) { /* no log yet */ }
    return `---- ${p} ----\n${t.slice(-n)}\n---- end ----`;
  }

  sanitizerReports() {
    const out = [];
    for (const p of this.logs) {
      let t = '';
      try { t = fs.readFileSync(p, 'utf8'); } catch (e) { continue; }
      for (const line of t.split('\n')) {
        if (SANITIZER_MARKERS.some((m) => line.includes(m))) out.push(line.trim());
      }
    }
    return out;
  }
}

// Last resort: never leave a node behind when the test process ends.
const live = new Set();
process.on('exit', () => { for (const n of live) n.kill('SIGKILL'); });

async function startNode(opts) {
  const n = new SibylNode(opts);
  live.add(n);
  await n.start();
  return n;
}

// True when `port` can be bound on `host` right now.
function portFree(host, port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

// Three ports free on every one of `hosts` (members of a cluster share their
// ports and differ by address, as Cassandra nodes on one machine do).
async function commonFreePorts(hosts) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const ports = [];
    while (ports.length < 3) {
      const p = await freePort(hosts[0]);
      if (!ports.includes(p)) ports.push(p);
    }
    let ok = true;
    for (const h of hosts.slice(1)) {
      for (const p of ports) ok = ok && await portFree(h, p);
    }
    if (ok) return ports;
  }
  throw new Error(`no 3 ports free on all of ${hosts.join(', ')}`);
}

// Starts one member per entry of `layout` ([{dc, rack}]) on 127.0.0.1,
// 127.0.0.2, ..., the first one the seed; `config` goes to every member.
// Every member started is in `live` (killed at exit) and in the result, also
// when a later start fails (the caller stops them all).
async function startCluster(layout, config = {}, members = []) {
  const hosts = layout.map((_, i) => `127.0.0.${i + 1}`);
  const ports = await commonFreePorts(hosts);
  for (let i = 0; i < layout.length; i++) {
    const n = new SibylNode({
      host: hosts[i], ports, seeds: hosts[0],
      config: { ...config, datacenter: JSON.stringify(layout[i].dc), rack: JSON.stringify(layout[i].rack) },
    });
    live.add(n);
    members.push(n);
    await n.start();
  }
  return members;
}

// GET http://host:adminPort/path as JSON (bounded in time).
function adminGet(node, urlPath) {
  const http = require('node:http');
  return new Promise((resolve, reject) => {
    const req = http.get({ host: node.host, port: node.adminPort, path: '/' + urlPath, timeout: 10000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${urlPath}: HTTP ${res.statusCode} ${body}`));
        else resolve(JSON.parse(body));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${urlPath}: timed out`)));
    req.on('error', reject);
  });
}

// Polls pred() (async) until it is truthy; bounded.
async function waitUntil(pred, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let v = false;
    try { v = await pred(); } catch (e) { v = false; }
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

module.exports = { startNode, startCluster, adminGet, waitUntil, SibylNode, live };
