import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import IORedis from 'ioredis';

/** A throw-away Redis Cluster of masters on loopback, for tests of REDIS_CLUSTER_NODES. */
export interface LocalRedisCluster {
  readonly ports: number[];
  /** The gateway's environment for this cluster. */
  env(): { REDIS_URL: string; REDIS_CLUSTER_NODES: string };
  /** A plain (non-cluster) client of one node, to look at what that node holds. */
  node(port: number): IORedis;
  /** The port of the master that owns `slot`, from CLUSTER SLOTS. */
  ownerOfSlot(slot: number): Promise<number>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
/** A cluster node also listens on port + 10000 (the cluster bus). */
const BUS_OFFSET = 10_000;

/**
 * Starts `masters` redis-server processes with cluster mode on, joins them with
 * `redis-cli --cluster create` (no replicas) and waits until every node says cluster_state:ok.
 * Fails with a clear message when redis-server or redis-cli is missing.
 */
export async function startRedisCluster(masters = 3): Promise<LocalRedisCluster> {
  for (const tool of ['redis-server', 'redis-cli']) {
    const probe = spawnSync(tool, ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      throw new Error(
        `${tool} is not installed (${probe.error?.message ?? probe.stderr}): the Redis Cluster test starts its own ` +
          'cluster and needs redis-server and redis-cli 7 on PATH (apt-get install redis-server).',
      );
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-redis-cluster-'));
  const ports = await freeClusterPorts(masters);
  const children: ChildProcess[] = [];
  const clients: IORedis[] = [];
  const stop = async (): Promise<void> => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(children.map((child) => stopProcess(child)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) children.push(startNode(port, dir));
    await Promise.all(ports.map((port, i) => waitForPing(port, children[i], dir)));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    await waitForClusterOk(ports);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ports,
    env: () => ({ REDIS_URL: `redis://${HOST}:${ports[0]}`, REDIS_CLUSTER_NODES: ports.map((p) => `${HOST}:${p}`).join(',') }),
    node: (port) => {
      const client = new IORedis({ host: HOST, port, maxRetriesPerRequest: 1 });
      clients.push(client);
      return client;
    },
    ownerOfSlot: async (slot) => {
      const client = new IORedis({ host: HOST, port: ports[0] });
      try {
        const ranges = await client.cluster('SLOTS');
        const range = ranges.find(([from, to]) => slot >= from && slot <= to);
        if (!range) throw new Error(`no node owns slot ${slot}`);
        return range[2][1];
      } finally {
        client.disconnect();
      }
    },
    stop,
  };
}

function startNode(port: number, dir: string): ChildProcess {
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--cluster-enabled', 'yes',
    '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
    '--cluster-node-timeout', '5000',
    '--save', '',
    '--appendonly', 'no',
    '--maxmemory-policy', 'noeviction',
    '--dir', dir,
    '--logfile', path.join(dir, `redis-${port}.log`),
  ];
  return spawn('redis-server', args, { stdio: 'ignore' });
}

async function waitForPing(port: number, child: ChildProcess, dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited (${child.exitCode}): ${readLog(dir, port)}`);
    const client = new IORedis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not listening yet
    } finally {
      client.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${readLog(dir, port)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Each node learns the others by gossip: wait until every one of them agrees. */
async function waitForClusterOk(ports: number[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const infos = await Promise.all(
      ports.map(async (port) => {
        const client = new IORedis({ host: HOST, port });
        try {
          return (await client.cluster('INFO')) as string;
        } finally {
          client.disconnect();
        }
      }),
    );
    const ok = infos.every(
      (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${ports.length}`) && info.includes('cluster_slots_ok:16384'),
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the Redis Cluster did not reach cluster_state:ok within 30 s:\n${infos.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Ports whose cluster-bus twin (port + 10000) is free as well. */
async function freeClusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < count && tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (ports.includes(port) || ports.includes(port + BUS_OFFSET) || ports.includes(port - BUS_OFFSET)) continue;
    if ((await isFree(port)) && (await isFree(port + BUS_OFFSET))) ports.push(port);
  }
  if (ports.length < count) throw new Error('found no free loopback ports for the Redis Cluster');
  return ports;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function readLog(dir: string, port: number): string {
  try {
    return fs.readFileSync(path.join(dir, `redis-${port}.log`), 'utf8').split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}
