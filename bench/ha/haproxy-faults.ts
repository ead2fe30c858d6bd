/**
 * Faults across machines (simulated on loopback): HAProxy with the generated default health checks in
 * front of three shop nodes on Redis and PostgreSQL. kill -9 of one node under a cart load (errors, time
 * until HAProxy marks it down, time from the kill to each pinned client's first success on another node,
 * time until the restarted node is back in rotation), then a rolling restart of every node (failed
 * requests, time each node took to drain and exit); every cart is checked afterwards.
 * @module
 */
import { CartLoad } from '../../test/helpers/cart-load.js';
import { startHaCluster } from '../../test/helpers/ha-cluster.js';
import { HAPROXY_DEFAULTS } from '../../src/cluster/haproxy.js';
import { summary } from './cluster-faults.js';
import type { CheckSummary } from './cluster-faults.js';

export interface HaproxyFaultResults {
  checks: { interMs: number; fastinterMs: number; fall: number; rise: number; drainDelayMs: number };
  kill: {
    failed: number;
    failures: string[];
    pinnedClients: number;
    /** Kill → the first acknowledged add of each client pinned to the node, served elsewhere. */
    redispatchMs: number[];
    markedDownMs: number;
    /** Kill → restarted node UP again (includes its start-up). */
    backInRotationMs: number;
    check: CheckSummary;
  };
  rolling: { acknowledged: number; failed: number; stopMs: number[]; check: CheckSummary };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nodeOf = (worker: string | undefined): string | undefined => worker?.split(':')[0];

async function untilMoreAcked(load: CartLoad, n: number): Promise<void> {
  const target = load.count('ok') + n;
  for (let i = 0; i < 4000 && load.count('ok') < target; i++) await sleep(25);
}

export async function haproxyFaults(clients: number): Promise<HaproxyFaultResults> {
  const d = HAPROXY_DEFAULTS;
  const ha = await startHaCluster({ nodes: 3, checkInterMs: d.checkInterMs, checkFastInterMs: d.checkFastInterMs, fall: d.fall });
  try {
    const load = new CartLoad({ url: ha.haproxy.url, clients, opsPerClient: 100_000, pauseMs: 20, maxMs: 600_000 });
    await load.prepare();
    const home = new Map<number, string>();
    for (const c of load.clients) home.set(c.index, nodeOf((await c.http.request('GET', '/api/cart')).node)!);
    const victim = ha.nodes.find((n) => n.name === home.get(0))!;
    const running = load.run();
    await untilMoreAcked(load, 200);
    const killAt = Date.now();
    await ha.killNode(victim);
    await ha.waitState(victim, (s) => s.startsWith('DOWN'));
    const markedDownMs = Date.now() - killAt;
    await untilMoreAcked(load, 100);
    await ha.startNode(victim);
    await ha.waitState(victim, (s) => s === 'UP', 60_000);
    const backInRotationMs = Date.now() - killAt;
    await untilMoreAcked(load, 100);
    load.stop();
    await running;
    const failedOps = load.ops().filter((o) => o.outcome !== 'ok');
    const pinned = load.clients.filter((c) => home.get(c.index) === victim.name);
    const redispatchMs = pinned
      .map((c) => c.ops.find((o) => o.outcome === 'ok' && o.startedAt > killAt && nodeOf(o.node) !== victim.name))
      .filter((o) => o !== undefined)
      .map((o) => o.endedAt - killAt)
      .sort((a, b) => a - b);
    const kill = {
      failed: failedOps.length, failures: failedOps.map((o) => (o.status ? String(o.status) : o.error ?? o.outcome)),
      pinnedClients: pinned.length, redispatchMs, markedDownMs, backInRotationMs, check: summary(await load.check()),
    };
    load.close();

    const rollingLoad = new CartLoad({ url: ha.haproxy.url, clients, opsPerClient: 100_000, pauseMs: 20, maxMs: 600_000 });
    await rollingLoad.prepare();
    const rollingRun = rollingLoad.run();
    const stopMs: number[] = [];
    for (const n of ha.nodes) {
      await untilMoreAcked(rollingLoad, 100);
      stopMs.push((await ha.stopNode(n)).elapsedMs);
      await ha.startNode(n);
      await ha.waitState(n, (s) => s === 'UP', 60_000);
    }
    await untilMoreAcked(rollingLoad, 100);
    rollingLoad.stop();
    await rollingRun;
    const rolling = {
      acknowledged: rollingLoad.count('ok'), failed: rollingLoad.ops().filter((o) => o.outcome !== 'ok').length,
      stopMs, check: summary(await rollingLoad.check()),
    };
    rollingLoad.close();
    return { checks: { interMs: d.checkInterMs, fastinterMs: d.checkFastInterMs, fall: d.fall, rise: d.rise, drainDelayMs: ha.drainDelayMs }, kill, rolling };
  } finally {
    await ha.dispose();
  }
}
