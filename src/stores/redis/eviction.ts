/**
 * The maxmemory-policy guard: any policy but `noeviction` lets Redis silently delete live sessions.
 *
 * Every session key has a TTL, so the `volatile-*` policies evict sessions just as `allkeys-*` do;
 * users are logged out and carts lost without an error anywhere. Under `noeviction` a full Redis
 * refuses writes instead, which the store reports as STORE_UNAVAILABLE (a 503), and nothing
 * acknowledged disappears.
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './options.js';

export const EVICTION_WARNING_CODE = 'TETHER_REDIS_EVICTION';

/**
 * Reads `maxmemory-policy` on the server (every primary of a Cluster) and emits one warning when a
 * policy could evict sessions. Resolves with that unsafe policy, else the policy read, or null when
 * CONFIG is renamed, disabled or denied. Connection failures reject, so the caller can try again later.
 */
export async function checkEvictionPolicy(client: RedisClient): Promise<string | null> {
  const nodes: Redis[] = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  let found: string | null = null;
  for (const node of nodes) {
    let policy: string | undefined;
    try {
      policy = policyOf(await node.config('GET', 'maxmemory-policy'));
    } catch (err) {
      if ((err as Error).name === 'ReplyError') continue; // unknown command, NOPERM: cannot tell
      throw err;
    }
    if (policy === undefined) continue;
    if (policy !== 'noeviction') {
      process.emitWarning(
        `Redis maxmemory-policy is "${policy}": once Redis reaches maxmemory it evicts keys, and sessions `
        + '(which all have a TTL, so volatile-* policies pick them too) vanish: users are silently logged out and their state lost. '
        + 'Set maxmemory-policy noeviction: a full Redis then refuses writes and the store reports STORE_UNAVAILABLE.',
        { code: EVICTION_WARNING_CODE, type: 'TetherWarning' });
      return policy;
    }
    found ??= policy;
  }
  return found;
}

/**
 * The policy in a `CONFIG GET maxmemory-policy` reply: a `[name, value]` array over RESP2 and by
 * default over RESP3, an object from a client that maps RESP3 maps (`replyMapping: 'resp3'`).
 */
function policyOf(reply: unknown): string | undefined {
  const value: unknown = Array.isArray(reply) ? (reply as unknown[])[1] : (reply as Record<string, unknown> | null)?.['maxmemory-policy'];
  return typeof value === 'string' ? value : undefined;
}
