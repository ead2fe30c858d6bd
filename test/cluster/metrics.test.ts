/**
 * The cluster's merged metrics over HTTP, against a real primary and two real workers (the tiny app,
 * whose registries have prom-client's default metrics and the engine's and no label of their own):
 * per-process metrics come once per worker under a `worker` label, counters sum across the workers,
 * and a replaced worker shows a new start time under the same label.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PER_WORKER_METRICS } from 'tether/cluster';
import { startApp, pidOf } from '../helpers/node-process.js';
import type { AppProcess } from '../helpers/node-process.js';
import { freePort } from '../helpers/redis.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import type { TempSqliteFile } from '../helpers/sqlite.js';

const NODE = 'met';
const WORKERS = [`${NODE}:w1`, `${NODE}:w2`];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sample { labels: Record<string, string>; value: number }

/** The samples of metric `name` in Prometheus text (label values here hold no quotes or commas). */
function samples(text: string, name: string): Sample[] {
  return text.split('\n').filter((l) => l.startsWith(name + ' ') || l.startsWith(name + '{')).map((l) => {
    const labels = Object.fromEntries([...(/\{(.*)\}/.exec(l)?.[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    return { labels, value: Number(l.slice(l.lastIndexOf(' ') + 1)) };
  });
}

/** Each worker's value of a per-worker metric, asserting one series per worker and nothing else. */
function perWorker(text: string, name: string): Map<string, number> {
  const s = samples(text, name);
  assert.deepEqual(s.map((x) => x.labels.worker).sort(), WORKERS, `${name}: one series per worker\n${s.map((x) => JSON.stringify(x)).join('\n')}`);
  return new Map(s.map((x) => [x.labels.worker!, x.value]));
}

/** GET /metrics on a new connection: the serving worker and the text. */
async function scrape(url: string): Promise<{ node: string; text: string }> {
  const res = await fetch(`${url}/metrics`, { headers: { connection: 'close' } });
  assert.equal(res.status, 200);
  return { node: res.headers.get('x-tether-node') ?? '', text: await res.text() };
}


describe('cluster metrics over HTTP', { timeout: 120_000 }, () => {
  let app: AppProcess;
  let db: TempSqliteFile;
  let port: number;
  let startedAt: number;

  before(async () => {
    db = await tempSqliteFile();
    port = await freePort();
    startedAt = Date.now();
    app = await startApp({
      script: 'test/cluster/fixtures/tiny-app.ts', port, readyNodes: 2,
      env: { TINY_DB: db.path, TETHER_WORKERS: '2', TETHER_NODE_NAME: NODE },
    });
  });
  after(async () => {
    await app?.stop();
    await db?.remove();
  });

  it('metrics when scraped from either worker then per-process figures come once per worker under `worker` and counters sum', async () => {
    // Connections without a session go to the workers in turn.
    const creators: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${app.url}/api/session`, { headers: { connection: 'close' } });
      assert.equal(res.status, 200);
      creators.push(((await res.json()) as { node: string }).node);
    }
    assert.deepEqual([...new Set(creators)].sort(), WORKERS, `both workers created sessions (${creators.join(', ')})`);

    const servedBy = new Set<string>();
    for (let i = 0; i < 6 && servedBy.size < 2; i++) {
      const { node, text } = await scrape(app.url);
      servedBy.add(node);
      const now = Date.now() / 1000;
      // prom-client rounds the start time to the second.
      for (const [w, start] of perWorker(text, 'process_start_time_seconds')) {
        assert.ok(start >= Math.floor(startedAt / 1000) - 1 && start <= now + 1, `${w} started at ${start}, between the test's start and now`);
      }
      for (const [w, rss] of perWorker(text, 'process_resident_memory_bytes')) {
        assert.ok(rss > 10 * 2 ** 20 && rss < 2 * 2 ** 30, `${w}: ${rss} bytes is one process's resident memory`);
      }
      for (const [w, used] of perWorker(text, 'nodejs_heap_size_used_bytes')) assert.ok(used > 0, `${w}: heap used ${used}`);
      for (const [w, max] of perWorker(text, 'process_max_fds')) assert.ok(max > 0, `${w}: ${max}`);
      perWorker(text, 'nodejs_eventloop_lag_p99_seconds');
      perWorker(text, 'process_cpu_seconds_total');
      for (const name of PER_WORKER_METRICS) {
        for (const s of samples(text, name)) assert.ok(WORKERS.includes(s.labels.worker!), `${name}: ${JSON.stringify(s.labels)}`);
      }
      assert.deepEqual(samples(text, 'tether_sessions_created_total'), [{ labels: {}, value: 6 }], `summed over the workers, scraped on ${node}`);
      assert.deepEqual(samples(text, 'tether_gate_waiting'), [{ labels: {}, value: 0 }]);
    }
    assert.deepEqual([...servedBy].sort(), WORKERS, 'scrapes reached both workers');
  });

  it('metrics when a worker is replaced then its series keep its label and its start time moves on while the other\'s stays', async () => {
    const earlier = perWorker((await scrape(app.url)).text, 'process_start_time_seconds');
    // The start time has whole seconds: let one pass, so the replacement's cannot equal the first's.
    const oldest = Math.max(...earlier.values());
    while (Date.now() / 1000 < oldest + 1.5) await sleep(100);
    const [victim, survivor] = WORKERS as [string, string];
    const pid = await pidOf(port, victim);
    const killedAt = Date.now() / 1000;
    process.kill(pid, 'SIGKILL');
    await pidOf(port, victim, pid);
    const later = perWorker((await scrape(app.url)).text, 'process_start_time_seconds');
    assert.ok(later.get(victim)! > earlier.get(victim)! && later.get(victim)! >= Math.round(killedAt) - 1, `${victim}: ${earlier.get(victim)} → ${later.get(victim)} (killed at ${killedAt})`);
    assert.equal(later.get(survivor), earlier.get(survivor), `${survivor} was not restarted`);
  });
});

describe('cluster metrics while a worker starts', { timeout: 120_000 }, () => {
  it('metrics when a replacement worker is still building its app then a scrape answers at once with the ready workers\' series, and with the replacement\'s once it shares them', async (t) => {
    const db = await tempSqliteFile();
    const port = await freePort();
    const app = await startApp({
      script: 'test/cluster/fixtures/tiny-app.ts', port, readyNodes: 2, readyTimeoutMs: 60_000,
      env: { TINY_DB: db.path, TETHER_WORKERS: '2', TETHER_NODE_NAME: NODE, TINY_START_DELAY_MS: '4000' },
    });
    t.after(async () => {
      await app.stop();
      await db.remove();
    });
    const [victim, survivor] = WORKERS as [string, string];
    const pid = await pidOf(port, victim);
    process.kill(pid, 'SIGKILL');
    await sleep(300);
    const started = Date.now();
    const during = await scrape(app.url);
    assert.ok(Date.now() - started < 2_000, `answered in ${Date.now() - started} ms, not held by the worker still starting`);
    assert.deepEqual(samples(during.text, 'process_start_time_seconds').map((x) => x.labels.worker), [survivor], 'the ready worker\'s series');
    await pidOf(port, victim, pid);
    const after = perWorker((await scrape(app.url)).text, 'process_start_time_seconds');
    assert.deepEqual([...after.keys()].sort(), WORKERS);
  });
});
