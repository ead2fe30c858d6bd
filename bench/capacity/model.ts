/**
 * The capacity model of docs/capacity.md as code: from measured inputs (CPU per request in a node, Redis
 * CPU and commands per request, bytes per session) and stated assumptions (request rate per user, write
 * share, cores per node, target utilisations, session lifetime), how many nodes, Redis Cluster shards and
 * how much memory a given number of concurrent users needs. The doc's worked table is rendered from here.
 * @module
 */

export interface MeasuredInputs {
  /** CPU µs in the node (primary + worker) per GET that reads the session. */
  nodeCpuUsRead: number;
  /** Per POST that changes the session. */
  nodeCpuUsWrite: number;
  /** Redis CPU µs (INFO cpu, user + sys) per request. */
  redisCpuUsRead: number;
  redisCpuUsWrite: number;
  /** Redis commands (INFO commandstats, scripts' inner calls included) per request. */
  redisCommandsRead: number;
  redisCommandsWrite: number;
  /** Round trips to Redis (total_reads_processed) per request. */
  redisRoundTripsRead: number;
  redisRoundTripsWrite: number;
  /** Redis used_memory growth per stored session (key, record, overhead), in bytes. */
  redisBytesPerSession: number;
  /** Resident memory of one worker under load, in MiB. */
  workerRssMiB: number;
}

export interface Assumptions {
  /** Requests per second per concurrent user. */
  requestsPerUserPerS: number;
  /** Share of requests that change the session. */
  writeShare: number;
  coresPerNode: number;
  /** CPU share of a node used at peak, leaving room for one node's failure and for spikes. */
  nodeUtilisation: number;
  /** CPU share of a Redis primary (one thread runs commands) used at peak. */
  redisUtilisation: number;
  /** Dataset per Redis primary (keeps fork, resync and failover fast). */
  shardDatasetGiB: number;
  replicasPerShard: number;
  /** Average visit length and idle timeout: a session lives visit + idle, so live sessions = users × (visit + idle) / visit. */
  visitMin: number;
  idleTimeoutMin: number;
  /** Headroom on Redis memory for fragmentation, replication buffers and forks (maxmemory = dataset / this). */
  redisMemoryHeadroom: number;
}

export const DEFAULT_ASSUMPTIONS: Assumptions = {
  requestsPerUserPerS: 0.1,
  writeShare: 0.2,
  coresPerNode: 8,
  nodeUtilisation: 0.6,
  redisUtilisation: 0.5,
  shardDatasetGiB: 8,
  replicasPerShard: 1,
  visitMin: 20,
  idleTimeoutMin: 30,
  redisMemoryHeadroom: 0.75,
};

export interface Plan {
  users: number;
  requestsPerS: number;
  liveSessions: number;
  nodes: number;
  nodeCores: number;
  nodeMemoryGiB: number;
  redisShardsForCpu: number;
  redisShardsForMemory: number;
  redisShards: number;
  redisDatasetGiB: number;
  /** Redis RAM across primaries and replicas, with headroom. */
  redisRamGiB: number;
  redisCommandsPerS: number;
}

const GIB = 2 ** 30;

export function plan(users: number, m: MeasuredInputs, a: Assumptions = DEFAULT_ASSUMPTIONS): Plan {
  const w = a.writeShare;
  const rps = users * a.requestsPerUserPerS;
  const nodeUs = (1 - w) * m.nodeCpuUsRead + w * m.nodeCpuUsWrite;
  const redisUs = (1 - w) * m.redisCpuUsRead + w * m.redisCpuUsWrite;
  const commands = (1 - w) * m.redisCommandsRead + w * m.redisCommandsWrite;
  // N + 1: one spare node, so a node can die or restart at peak without exceeding the target utilisation.
  const nodes = Math.ceil((rps * nodeUs) / (a.coresPerNode * a.nodeUtilisation * 1e6)) + 1;
  const liveSessions = Math.ceil(users * ((a.visitMin + a.idleTimeoutMin) / a.visitMin));
  const dataset = liveSessions * m.redisBytesPerSession;
  const redisShardsForCpu = Math.ceil((rps * redisUs) / (a.redisUtilisation * 1e6));
  const redisShardsForMemory = Math.ceil(dataset / (a.shardDatasetGiB * GIB));
  // Redis Cluster needs three primaries to reach a majority; a single shard would be a plain primary + replica.
  const redisShards = Math.max(3, redisShardsForCpu, redisShardsForMemory);
  return {
    users, requestsPerS: rps, liveSessions, nodes, nodeCores: a.coresPerNode,
    nodeMemoryGiB: Math.ceil((a.coresPerNode * m.workerRssMiB * 1.5) / 1024),
    redisShardsForCpu, redisShardsForMemory, redisShards,
    redisDatasetGiB: dataset / GIB,
    redisRamGiB: ((dataset / a.redisMemoryHeadroom) * (1 + a.replicasPerShard)) / GIB,
    redisCommandsPerS: rps * commands,
  };
}
