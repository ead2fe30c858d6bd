/**
 * Runs scenarios against stacks under identical load: starts each stack's backend and server, seeds
 * sessions, warms up, then for every pass measures every (scenario, stack) in a rotating order, so
 * machine drift spreads over all stacks instead of favouring whichever ran first. Within a pass the
 * stacks of one framework run together, around the same framework without sessions (`passOrder`), so
 * that a session overhead is the difference of two measurements taken seconds apart.
 *
 * Per measurement: server CPU (process.cpuUsage over IPC) and handled-request count before and after,
 * redis-server CPU (INFO cpu) and INFO commandstats before and after, autocannon's responses and the
 * exact p50/p99 of every response's latency.
 * @module
 */
import { mkdirSync } from 'node:fs';
import type { StackSpec } from './stacks.js';
import { ID_WIDTH, usesRedis } from './stacks.js';
import { ServerProcess, LoadProcess, procCpuUs, redisStats, commandDelta, serverNodeArgs } from './procs.js';
import type { RedisStats } from './procs.js';
import type { Credential } from './load.js';
import { seedSessions, race } from './http.js';
import type { RaceResult } from './http.js';
import { census } from './census.js';
import { buildBench } from './build.js';
import type { Census } from './census.js';
import { ROUTES } from './workload.js';
import { startRedis, redisCommand } from '../../test/helpers/redis.js';
import type { RedisServer } from '../../test/helpers/redis.js';
import { tempSqliteFile } from '../../test/helpers/sqlite.js';
import type { TempSqliteFile } from '../../test/helpers/sqlite.js';

export type Scenario = 'read' | 'write' | 'login';

export const SCENARIOS: Record<Scenario, { method: 'GET' | 'POST'; path: string; label: string }> = {
  read: { method: 'GET', path: ROUTES.read, label: 'GET that reads the session' },
  write: { method: 'POST', path: ROUTES.write, label: 'POST that changes the session' },
  login: { method: 'POST', path: ROUTES.login, label: 'POST that logs in (regenerates the ID)' },
};

export interface HarnessOptions {
  stacks: readonly StackSpec[];
  scenarios: readonly Scenario[];
  passes: number;
  durationS: number;
  /** Once per stack and scenario, before the first pass. */
  warmupS: number;
  /** Before every measurement (the server idled while others ran). */
  settleS: number;
  connections: number;
  /** Distinct sessions the read and write scenarios rotate over. */
  sessions: number;
  /** Sessions the login scenario rotates over (each login replaces its cookie). */
  loginSessions: number;
  /** Concurrent writes on one session in the lost-update check; 0 skips it. */
  raceWrites: number;
  /** Requests per scenario in the Redis command census (MONITOR); 0 skips it. */
  censusRequests: number;
  /** Write a V8 CPU profile of every measured pass into this folder (<stack>.<scenario>.<pass>.cpuprofile). */
  profileDir?: string;
  /** Called once the timed passes are over, before the census and the races, which time nothing. */
  afterPasses?: () => void;
  log: (line: string) => void;
}

export interface PassFigures {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  responses: number;
  non2xx: number;
  errors: number;
  /** Server process CPU per handled request, µs. */
  serverCpuUs: number;
  /** Of which system (kernel) time. */
  serverSystemUs: number;
  /** redis-server CPU per handled request, µs (0 without Redis). */
  storeCpuUs: number;
  /** Redis commands per handled request, including those run inside Lua scripts (null without Redis). */
  commandsPerRequest: number | null;
}

export interface StackOutcome {
  stack: StackSpec;
  error?: string;
  /** passes[scenario][pass] */
  passes: Partial<Record<Scenario, PassFigures[]>>;
  race?: RaceResult;
  /** Redis commands of one request, by origin (client or Lua), per scenario. */
  census?: Partial<Record<Scenario, Census>>;
}

export interface Live {
  spec: StackSpec;
  server: ServerProcess;
  redis?: RedisServer;
  sqlite?: TempSqliteFile;
  rw: Credential[];
  login: Credential[];
}

export async function startStack(spec: StackSpec, o: HarnessOptions, serverScript: string): Promise<Live> {
  let redis: RedisServer | undefined;
  let sqlite: TempSqliteFile | undefined;
  if (usesRedis(spec)) redis = await startRedis();
  if (spec.store === 'sqlite') sqlite = await tempSqliteFile();
  if (o.profileDir) mkdirSync(o.profileDir, { recursive: true });
  const server = new ServerProcess(spec.id, serverScript);
  try {
    await server.start({ ...(redis ? { redisUrl: redis.url } : {}), ...(sqlite ? { sqlitePath: sqlite.path } : {}) });
    const rw = await seedSessions(spec, server.port, o.sessions, 0);
    const login = o.scenarios.includes('login') ? await seedSessions(spec, server.port, o.loginSessions, o.sessions) : [];
    // Only a server run with --expose-gc can collect; a base commit's server (bench:compare) may not know the message.
    if (serverNodeArgs().includes('--expose-gc')) await server.collect();
    return { spec, server, redis, sqlite, rw, login };
  } catch (err) {
    await server.close().catch(() => {});
    await redis?.dispose();
    await sqlite?.remove();
    throw err;
  }
}

export async function stopStack(l: Live): Promise<void> {
  await l.server.close().catch(() => {});
  await l.redis?.dispose().catch(() => {});
  await l.sqlite?.remove().catch(() => {});
}

async function redisCounters(l: Live): Promise<{ cpuUs: number; stats: RedisStats } | null> {
  if (!l.redis) return null;
  const stats = redisStats(await redisCommand(l.redis.port, ['INFO', 'all']));
  return { cpuUs: stats.cpuUs ?? procCpuUs(l.redis.pid), stats };
}

async function drive(load: LoadProcess, l: Live, scenario: Scenario, durationS: number, o: HarnessOptions) {
  const sc = SCENARIOS[scenario];
  const res = await load.run({
    url: `http://127.0.0.1:${l.server.port}`, method: sc.method, path: sc.path, connections: o.connections, durationS,
    sessions: scenario === 'login' ? l.login : l.rw, mode: scenario === 'login' ? 'login' : 'rotate', cookieName: l.spec.cookieName,
  });
  if (scenario === 'login' && res.sessions) {
    l.login = res.sessions;
    // Logins the run cut off may have changed the session ID unseen: give those entries fresh sessions.
    const stale = res.stale ?? [];
    if (stale.length) {
      const fresh = await seedSessions(l.spec, l.server.port, stale.length, 10_000_000 + Math.floor(Math.random() * 1e6));
      stale.forEach((i, k) => (l.login[i] = fresh[k]!));
    }
  }
  return res;
}

export async function measure(load: LoadProcess, l: Live, scenario: Scenario, pass: number, o: HarnessOptions): Promise<PassFigures> {
  if (o.settleS > 0) await drive(load, l, scenario, o.settleS, o);
  if (o.profileDir) await l.server.profileStart();
  const cpu0 = await l.server.cpu();
  const r0 = await redisCounters(l);
  const res = await drive(load, l, scenario, o.durationS, o);
  const cpu1 = await l.server.cpu();
  if (o.profileDir) await l.server.profileStop(`${o.profileDir}/${l.spec.id}.${scenario}.${pass + 1}.cpuprofile`);
  const r1 = await redisCounters(l);
  const handled = Math.max(1, cpu1.handled - cpu0.handled);
  const mix = r0 && r1 ? commandDelta(r0.stats, r1.stats) : null;
  return {
    rps: res.rps, p50Ms: res.p50Ms, p99Ms: res.p99Ms, responses: res.responses, non2xx: res.non2xx, errors: res.errors,
    serverCpuUs: (cpu1.cpuUs - cpu0.cpuUs) / handled,
    serverSystemUs: (cpu1.systemUs - cpu0.systemUs) / handled,
    storeCpuUs: r0 && r1 ? (r1.cpuUs - r0.cpuUs) / handled : 0,
    commandsPerRequest: mix ? Object.values(mix).reduce((a, b) => a + b, 0) / handled : null,
  };
}

/**
 * The order of one pass (`pass` from 0): the stacks grouped by their baseline (the same framework
 * without sessions), each baseline in the middle of its group, the others around it; the groups and the
 * stacks within each turn by one place per pass. A stack is then measured at most half its group away
 * from the baseline its overhead is taken against, where a rotation of the whole list put a
 * framework's last stack up to ≈ 60 s after its baseline in the full run.
 */
export function passOrder<T>(items: readonly T[], specOf: (item: T) => StackSpec, pass: number): T[] {
  const groups = new Map<string, { base: T[]; others: T[] }>();
  for (const item of items) {
    const spec = specOf(item);
    let g = groups.get(spec.baseline);
    if (g === undefined) groups.set(spec.baseline, (g = { base: [], others: [] }));
    (spec.id === spec.baseline ? g.base : g.others).push(item);
  }
  const turn = <U>(list: readonly U[]): U[] => list.map((_, i) => list[(i + pass) % list.length]!);
  return turn([...groups.values()]).flatMap(({ base, others }) => {
    const o = turn(others);
    const mid = Math.floor(o.length / 2);
    return [...o.slice(0, mid), ...base, ...o.slice(mid)];
  });
}

/** Runs everything; stacks that fail to start or to serve are reported with their error, not dropped silently. */
export async function runHarness(o: HarnessOptions): Promise<StackOutcome[]> {
  const outcomes = new Map<string, StackOutcome>(o.stacks.map((s) => [s.id, { stack: s, passes: {} }]));
  const live: Live[] = [];
  const compiled = await buildBench();
  const load = new LoadProcess(compiled.load);
  try {
    // Two at a time: startup and seeding are not measured, and the machine has few cores.
    const queue = [...o.stacks];
    const starter = async (): Promise<void> => {
      for (let spec = queue.shift(); spec; spec = queue.shift()) {
        const t0 = Date.now();
        try {
          live.push(await startStack(spec, o, compiled.server));
          o.log(`  started ${spec.id} (${Date.now() - t0} ms)`);
        } catch (err) {
          outcomes.get(spec.id)!.error = (err as Error).message.split('\n')[0];
          o.log(`  ${spec.id} did not start: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all([starter(), starter()]);
    live.sort((a, b) => o.stacks.indexOf(a.spec) - o.stacks.indexOf(b.spec));
    if (o.warmupS > 0) {
      o.log(`warm-up: ${o.warmupS} s per stack and scenario`);
      for (const l of live) for (const sc of o.scenarios) await drive(load, l, sc, o.warmupS, o);
    }
    for (let p = 0; p < o.passes; p++) {
      for (const sc of o.scenarios) {
        const order = passOrder(live, (l) => l.spec, p);
        for (const l of order) {
          const out = outcomes.get(l.spec.id)!;
          if (out.error) continue;
          try {
            const f = await measure(load, l, sc, p, o);
            (out.passes[sc] ??= []).push(f);
            o.log(`  pass ${p + 1}/${o.passes} ${sc.padEnd(5)} ${l.spec.id.padEnd(ID_WIDTH)} ${Math.round(f.rps).toString().padStart(6)} req/s  ` +
              `${f.serverCpuUs.toFixed(1).padStart(6)} µs CPU/req (${f.serverSystemUs.toFixed(1)} sys)${f.storeCpuUs ? ` + ${f.storeCpuUs.toFixed(1)} redis` : ''}` +
              `${f.non2xx || f.errors ? `  (${f.non2xx} non-2xx, ${f.errors} errors)` : ''}`);
          } catch (err) {
            out.error = `${sc}: ${(err as Error).message}`;
            o.log(`  ${l.spec.id} failed: ${out.error}`);
          }
        }
      }
    }
    o.afterPasses?.();
    if (o.censusRequests > 0) {
      for (const l of live) {
        const out = outcomes.get(l.spec.id)!;
        if (!l.redis || out.error) continue;
        for (const sc of o.scenarios) {
          try {
            const c = await census({
              redisPort: l.redis.port, serverPort: l.server.port, method: SCENARIOS[sc].method, path: SCENARIOS[sc].path,
              creds: sc === 'login' ? l.login : l.rw, cookieName: l.spec.cookieName, n: o.censusRequests,
            });
            (out.census ??= {})[sc] = c;
            o.log(`  redis ${sc.padEnd(5)} ${l.spec.id.padEnd(ID_WIDTH)} ${c.clientCommands} client commands (${Object.entries(c.byCommand).map(([k, v]) => `${k} ${v}`).join(', ')}), ${c.scriptCommands} inside Lua`);
          } catch (err) {
            o.log(`  census ${l.spec.id} ${sc} failed: ${(err as Error).message}`);
          }
        }
      }
    }
    if (o.raceWrites > 0) {
      for (const l of live) {
        if (l.spec.layer === 'none' || outcomes.get(l.spec.id)!.error) continue;
        try {
          const r = await race(l.spec, l.server.port, o.raceWrites);
          outcomes.get(l.spec.id)!.race = r;
          o.log(`  race ${l.spec.id.padEnd(ID_WIDTH)} ${r.ok}/${r.sent} answered 200, counter ${r.final}, lost ${r.lost}`);
        } catch (err) {
          o.log(`  race ${l.spec.id} failed: ${(err as Error).message}`);
        }
      }
    }
  } finally {
    load.close();
    await Promise.all(live.map(stopStack));
  }
  return [...outcomes.values()];
}
