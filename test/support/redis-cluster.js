'use strict';
// A Redis Cluster of its own for a test or a benchmark: Debian's redis-server with
// --cluster-enabled on free ports, joined with `redis-cli --cluster create`. Plain CommonJS, so that
// bench/*.mjs can use it as well as the TypeScript tests (types: redis-cluster.d.ts).
const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');

const HOST = '127.0.0.1';
const run = promisify(execFile);

/** A port nothing listens on now (and its cluster bus port, port + 10000, below 65536). */
async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer().once('error', reject);
      server.listen(0, HOST, () => {
        const { port: chosen } = server.address();
        server.close(() => resolve(chosen));
      });
    });
    if (port + 10000 < 65536 && (await portIsFree(port + 10000))) return port;
  }
}

function portIsFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer().once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** CRC16 (XMODEM) of Redis Cluster, with the hash tag rule: the slot of a key. */
function slotOf(key) {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

async function waitFor(what, condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts `masters` masters with `replicasPerMaster` replicas each and waits until every node says
 * `cluster_state:ok`. `nodeTimeoutMs` (cluster-node-timeout) is how long a dead master goes unnoticed
 * before its replica is promoted. With `password`, every node requires it (and replicas use it).
 */
async function startRedisCluster({ masters = 3, replicasPerMaster = 1, password, nodeTimeoutMs = 1000, startTimeoutMs = 30000 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-cluster-'));
  const count = masters * (1 + replicasPerMaster);
  const ports = [];
  const processes = new Map();
  const auth = password ? ['-a', password, '--no-auth-warning'] : [];
  const cli = (port, ...args) => run('redis-cli', ['-h', HOST, '-p', String(port), ...auth, ...args], { timeout: 10000 }).then(({ stdout }) => stdout);

  const cluster = {
    /** Seed nodes as REDIS_CLUSTER_NODES takes them. */
    nodes: '',
    ports,
    password,
    dir,
    /** REDIS_CLUSTER_NODES with the password in URL entries, when there is one. */
    get clusterNodesVariable() {
      if (!password) return this.nodes;
      return ports.map((port) => `redis://:${encodeURIComponent(password)}@${HOST}:${port}`).join(',');
    },
    slotOf,
    cli,
    /** The port of the master serving `keyOrSlot` now, as a live node sees it. */
    async masterOf(keyOrSlot) {
      const slot = typeof keyOrSlot === 'number' ? keyOrSlot : slotOf(keyOrSlot);
      for (const port of ports) {
        if (!processes.has(port)) continue;
        try {
          const slots = await clusterSlots(port);
          const range = slots.find(({ from, to }) => slot >= from && slot <= to);
          if (range) return range.masterPort;
        } catch {
          // This node does not answer: ask another.
        }
      }
      throw new Error(`no live node knows the master of slot ${slot}`);
    },
    /** SIGKILL, as a crash: nothing flushed, nothing handed over. */
    killMaster(port) {
      const child = processes.get(port);
      if (!child) throw new Error(`no node of this cluster runs on port ${port}`);
      processes.delete(port);
      child.kill('SIGKILL');
    },
    /** Waits until another node serves the slot that `port` served (a replica promoted), and the cluster is ok again. */
    async waitForFailover(keyOrSlot, deadPort, timeoutMs = 30000) {
      return waitFor(
        `a replica of ${deadPort} to be promoted`,
        async () => {
          const master = await cluster.masterOf(keyOrSlot);
          if (master === deadPort) return undefined;
          const states = await Promise.all([...processes.keys()].map((port) => cli(port, 'cluster', 'info')));
          return states.every((info) => /cluster_state:ok/.test(info)) ? master : undefined;
        },
        timeoutMs,
      );
    },
    /** Kills every node and removes the data; safe to call twice, or after a failed start. */
    async stop() {
      const exits = [...processes.values()].map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve))));
      for (const child of processes.values()) child.kill('SIGKILL');
      processes.clear();
      await Promise.all(exits);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  async function clusterSlots(port) {
    // CLUSTER NODES: one line per node, `id address flags master ping pong epoch link slot...`.
    const lines = (await cli(port, 'cluster', 'nodes')).trim().split('\n');
    const result = [];
    for (const line of lines) {
      const [, address, flags, , , , , linkState, ...slotRanges] = line.split(' ');
      if (!flags.includes('master') || flags.includes('fail') || linkState !== 'connected') continue;
      const masterPort = Number(address.split('@')[0].split(':').pop());
      for (const range of slotRanges) {
        if (range.startsWith('[')) continue;
        const [from, to = from] = range.split('-').map(Number);
        result.push({ from, to, masterPort });
      }
    }
    return result;
  }

  try {
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const nodeDir = path.join(dir, String(port));
      fs.mkdirSync(nodeDir);
      const args = [
        '--port', String(port), '--bind', HOST, '--dir', nodeDir, '--daemonize', 'no', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs),
        '--cluster-replica-validity-factor', '0', '--logfile', path.join(nodeDir, 'redis.log'),
        ...(password ? ['--requirepass', password, '--masterauth', password] : []),
      ];
      const child = spawn('redis-server', args, { stdio: 'ignore' });
      child.once('error', () => undefined);
      processes.set(port, child);
      ports.push(port);
    }
    cluster.nodes = ports.map((port) => `${HOST}:${port}`).join(',');
    await Promise.all(ports.map((port) => waitFor(`redis-server on ${port}`, async () => (await cli(port, 'ping')).trim() === 'PONG', startTimeoutMs)));
    await run('redis-cli', [...auth, '--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], {
      timeout: startTimeoutMs,
    });
    await waitFor(
      'every node to say cluster_state:ok and know every other',
      async () => {
        const infos = await Promise.all(ports.map((port) => cli(port, 'cluster', 'info')));
        return infos.every((info) => /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${count}\\b`).test(info));
      },
      startTimeoutMs,
    );
    // Each replica has attached to its master (a failover needs one that is in sync).
    await waitFor(
      'every replica to be in sync with its master',
      async () => {
        const roles = await Promise.all(ports.map((port) => cli(port, 'info', 'replication')));
        const replicas = roles.filter((info) => /role:slave/.test(info));
        return replicas.length === masters * replicasPerMaster && replicas.every((info) => /master_link_status:up/.test(info));
      },
      startTimeoutMs,
    );
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

module.exports = { startRedisCluster, slotOf };
