/**
 * `npm run bench:durability`: what a kill -9 of redis-server right after the last acknowledged write
 * loses, per AOF setting (SECURITY.md F6: `always` 0; `everysec` 0 for a process kill, up to about a
 * second of writes for a machine crash, which cannot be played here).
 *
 * Each round starts a redis-server with `--appendonly yes --appendfsync <mode>` in a fresh folder, writes
 * through RedisStore one after the other (creates, updates, destroys, each awaited: acknowledged), sends
 * SIGKILL the moment the last one is acknowledged, restarts Redis on the same folder and checks every
 * acknowledged write: a create or update that is missing or older is lost, a destroyed session that is
 * back is resurrected. With `--busy-disk`, another process writes and fsyncs a file in the same folder
 * throughout (bounded in size), the case in which Redis postpones its AOF writes while an fsync lags.
 *
 *   node --conditions=tether-source --import tsx bench/durability.ts [--rounds 10] [--writes 300] [--busy-disk] [--json FILE]
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { wholeFlag } from './lib/args.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { ManualClock, makeRecord } from '../src/testing/store-suite.js';
import type { SessionRecord } from '../src/core/store.js';
import { startRedis, waitFor } from '../test/helpers/redis.js';
import type { RedisServer } from '../test/helpers/redis.js';
import { ensureSystemPackages } from '../scripts/system-packages.mjs';
import { machine, versions } from './lib/machine.js';
import { median } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' }, writes: { type: 'string', default: '300' },
    'busy-disk': { type: 'boolean', default: false }, json: { type: 'string' },
  },
});
const rounds = wholeFlag(values.rounds, 'rounds', 100);
const writes = wholeFlag(values.writes, 'writes', 100_000);
const busyDisk = values['busy-disk'];
ensureSystemPackages(['redis-server'], 'The durability benchmark', 'npm run bench:durability');

interface Round {
  acknowledged: number;
  lost: number;
  resurrected: number;
  writeMs: number;
  /** Redis logged that an AOF fsync lagged ("disk is busy?"): it may then reply before writing the AOF. */
  fsyncLagged: boolean;
}

/** A child process that writes 1 MiB blocks to a file in `dir` and fsyncs each, until killed or 512 MiB. */
function diskLoad(dir: string): { stop: () => void } {
  const script = `const fs=require('fs');const f=fs.openSync(process.argv[1],'w');const b=Buffer.alloc(1<<20,7);`
    + `for(let i=0;i<512;i++){fs.writeSync(f,b,0,b.length,(i%64)*b.length);fs.fsyncSync(f);}`;
  const child = spawn(process.execPath, ['-e', script, join(dir, 'disk-load.bin')], { stdio: 'ignore' });
  return { stop: () => void child.kill('SIGKILL') };
}

async function round(mode: 'always' | 'everysec'): Promise<Round> {
  const redis: RedisServer = await startRedis({ appendonly: mode });
  const clock = new ManualClock();
  const store = new RedisStore({ url: redis.url, clock });
  const load = busyDisk ? diskLoad(redis.dir) : null;
  try {
    // Of every ten writes: six creates, three updates of an earlier create, one destroy of another
    // (an earlier create already destroyed is created anew instead).
    const live = new Map<string, SessionRecord>();
    const created: string[] = [];
    const destroyed = new Set<string>();
    const t0 = performance.now();
    for (let i = 0; i < writes; i++) {
      const kind = i % 10;
      const older = created.length === 0 ? undefined : live.get(created[(i * 7919) % created.length]!);
      if (kind >= 6 && kind <= 8 && older) {
        const next = { ...older, version: older.version + 1, data: JSON.stringify({ i }) };
        if ((await store.set(next, older.version)).ok) live.set(next.key, next);
      } else if (kind === 9 && older) {
        await store.destroy(older.key);
        live.delete(older.key);
        destroyed.add(older.key);
      } else {
        const rec = makeRecord(clock, { data: JSON.stringify({ i }) });
        if ((await store.set(rec, 0)).ok) {
          live.set(rec.key, rec);
          created.push(rec.key);
        }
      }
    }
    const writeMs = performance.now() - t0;
    await redis.kill();
    load?.stop();
    const fsyncLagged = /fsync is taking too long/.test(await readFile(join(redis.dir, 'redis.log'), 'utf8').catch(() => ''));
    await redis.restart();
    await waitFor('the store to reconnect', 10_000, async () => (await store.get([...live.keys()][0]!).catch(() => undefined)) !== undefined);
    let lost = 0;
    for (const rec of live.values()) {
      const got = await store.get(rec.key);
      if (got === null || got.version < rec.version) lost++;
    }
    let resurrected = 0;
    for (const key of destroyed) if ((await store.get(key)) !== null) resurrected++;
    return { acknowledged: writes, lost, resurrected, writeMs, fsyncLagged };
  } finally {
    load?.stop();
    await store.close();
    await redis.dispose();
  }
}

const started = Date.now();
const results: Record<string, Round[]> = {};
for (const mode of ['everysec', 'always'] as const) {
  results[mode] = [];
  for (let r = 0; r < rounds; r++) {
    const one = await round(mode);
    results[mode].push(one);
    console.log(`${mode.padEnd(8)} round ${r + 1}/${rounds}: ${one.acknowledged} acknowledged in ${Math.round(one.writeMs)} ms, ${one.lost} lost, ${one.resurrected} destroyed sessions back${one.fsyncLagged ? ' (Redis logged a lagging AOF fsync)' : ''}`);
  }
}
console.log(`\nkill -9 at the last acknowledgement, ${rounds} rounds of ${writes} writes${busyDisk ? ', another process fsyncing the same disk' : ''}:`);
for (const [mode, rs] of Object.entries(results)) {
  const lost = rs.map((r) => r.lost + r.resurrected);
  console.log(`  appendfsync ${mode.padEnd(8)} rounds losing anything: ${lost.filter((n) => n > 0).length}/${rs.length}; most lost in a round: ${Math.max(...lost)}; `
    + `rounds with a lagging fsync: ${rs.filter((r) => r.fsyncLagged).length}; median write ${(median(rs.map((r) => r.writeMs / r.acknowledged)) * 1000).toFixed(0)} µs`);
}
if (values.json) {
  mkdirSync(dirname(values.json), { recursive: true });
  writeFileSync(values.json, JSON.stringify({
    bench: 'durability', generatedAt: new Date().toISOString(), elapsedS: Math.round((Date.now() - started) / 1000),
    machine: machine(), versions: versions(['ioredis'], true), config: { rounds, writes, busyDisk }, results,
  }, null, 2) + '\n');
  console.log(`results: ${values.json}`);
}
