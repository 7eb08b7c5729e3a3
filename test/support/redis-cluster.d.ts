/** A Redis Cluster of a test's own (redis-cluster.js). */
export interface RedisCluster {
  /** Seed nodes as REDIS_CLUSTER_NODES takes them: `127.0.0.1:port,...`. */
  nodes: string;
  /** REDIS_CLUSTER_NODES with the password in `redis://:password@` entries, when the cluster has one. */
  readonly clusterNodesVariable: string;
  ports: number[];
  password?: string;
  dir: string;
  slotOf(key: string): number;
  /** redis-cli against one node; answers its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The port of the master that serves a key (or a slot) now. */
  masterOf(keyOrSlot: string | number): Promise<number>;
  /** SIGKILLs the node on `port`. */
  killMaster(port: number): void;
  /** Waits until another master serves the key or slot `deadPort` served, and the cluster is ok; answers its port. */
  waitForFailover(keyOrSlot: string | number, deadPort: number, timeoutMs?: number): Promise<number>;
  /** Kills every node and removes their directories. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  password?: string;
  /** cluster-node-timeout: how long a dead master goes unnoticed. Default 1000 ms. */
  nodeTimeoutMs?: number;
  startTimeoutMs?: number;
}

export function startRedisCluster(options?: RedisClusterOptions): Promise<RedisCluster>;
export function slotOf(key: string): number;
