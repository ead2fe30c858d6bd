/**
 * Renders docs/benchmarks.md and docs/benchmarks.svg from the JSON files in bench/results (never typed
 * by hand): one section per results file that exists (core.json from bench:core, run.json from bench,
 * and any other bench's file that has `bench` and `title`, through its generic `summary`/`tables`), then the hand-written analysis
 * kept in bench/analysis.md. Run it alone to regenerate: `node --import tsx bench/report.ts`.
 * @module
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib/procs.js';
import { RESULTS_DIR } from './lib/results.js';
import type { ResultsFile } from './lib/results.js';
import type { StackSummary, ScenarioSummary } from './lib/summary.js';
import type { MemoryResults } from './lib/memory.js';
import type { Machine } from './lib/machine.js';
import { table, num, ratio } from './lib/markdown.js';
import { barChart } from './lib/svg.js';
import type { ChartRow } from './lib/svg.js';

interface Common extends ResultsFile {
  machine: Machine;
  versions: Record<string, string>;
  command: string;
}

export interface RunFile extends Common {
  config: {
    passes: number; durationS: number; warmupS: number; connections: number; sessions: number; raceWrites: number;
    scenarios: Array<'read' | 'write' | 'login'>;
    /** Node flags of the servers under test (absent in runs before they were recorded). */
    serverNodeArgs?: string[];
    /** Each pass measured a framework's stacks together, around the framework without sessions (bench/lib/harness.ts passOrder). */
    grouped?: boolean;
  };
  leftOut: Array<{ id: string; reason: string }>;
  stacks: StackSummary[];
  memory: MemoryResults | null;
}

interface CoreFile extends Common {
  config: { passes: number; durationS: number; connections: number; sessions: number };
  routes: Array<{ route: string; bare: ScenarioSummary; tether: ScenarioSummary; rpsRatio: number; cpuOverheadPct: number; rpsOverheadPct: number }>;
  aimPct: number;
}

const SCENARIO_TITLES: Record<string, string> = {
  read: 'GET that reads the session (rotating over the pre-created sessions)',
  write: 'POST that changes the session (rotating over the pre-created sessions)',
  login: 'POST that logs in: regenerates the session ID, keeps the data',
};

function provenance(r: Common): string {
  const m = r.machine;
  const v = Object.entries(r.versions).map(([k, x]) => `${k} ${x}`).join(', ');
  return [
    `Generated ${r.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} by \`${r.command}\`${r.quick ? ' (**quick run**: one short pass; use the full run for numbers to quote)' : ''}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}; load average at the end ${m.load.join(' / ')}.`,
    `Versions: ${v}.`,
  ].join('\n');
}

function coreSection(r: CoreFile): string {
  const rows = r.routes.map((x) => [
    x.route, num(x.bare.rps), num(x.tether.rps), ratio(x.rpsRatio), `${num(x.rpsOverheadPct, 1)} %`,
    num(x.bare.cpuUs), num(x.tether.cpuUs), `${num(x.cpuOverheadPct, 1)} %`, num(x.bare.p50Ms, 2), num(x.tether.p50Ms, 2),
  ]);
  const read = r.routes.find((x) => x.route.startsWith('GET'));
  return [
    `## ${r.title}`,
    '',
    provenance(r),
    '',
    `node:http with Tether's \`withSessions\` and the default MemoryStore against the same handler without sessions; ` +
      `autocannon, ${r.config.connections} connections, median of ${r.config.passes} passes of ${r.config.durationS} s, ` +
      `rotating over ${r.config.sessions} sessions. Overhead in requests/s is bare ÷ Tether − 1; in CPU, Tether ÷ bare − 1.`,
    '',
    table(['Route', 'bare req/s', 'Tether req/s', 'ratio', 'overhead (req/s)', 'bare CPU µs/req', 'Tether CPU µs/req', 'overhead (CPU)', 'bare p50 ms', 'Tether p50 ms'], rows),
    '',
    read ? `Aim: read overhead under ${r.aimPct} % of the bare route. Measured: ${num(read.rpsOverheadPct, 1)} % in requests/s, ${num(read.cpuOverheadPct, 1)} % in CPU per request: **${read.rpsOverheadPct < r.aimPct ? 'met' : 'not met'}**.` : '',
  ].join('\n');
}

function stackRows(r: RunFile, sc: 'read' | 'write' | 'login'): Array<Array<string>> {
  return r.stacks.filter((s) => s.results[sc]).map((s) => {
    const x = s.results[sc]!;
    return [
      s.layer === 'tether' ? `**${s.label}**` : s.label,
      num(x.rps), ratio(x.vsNode?.rps), num(x.p50Ms, 2), ratio(x.vsNode?.p50), num(x.p99Ms, 2), ratio(x.vsNode?.p99),
      x.storeCpuUs ? `${num(x.cpuUs)} (${num(x.serverCpuUs)} + ${num(x.storeCpuUs)})` : num(x.cpuUs), ratio(x.vsNode?.cpu),
      x.overheadUs === null ? '–' : num(x.overheadUs),
      x.commandsPerRequest === null ? '–' : x.census ? `${num(x.census.clientCommands)} / ${num(x.commandsPerRequest)}` : `– / ${num(x.commandsPerRequest)}`,
      x.non2xx || x.errors ? `${x.non2xx} non-2xx, ${x.errors} errors` : '',
    ];
  });
}

function olderThan(version: string, than: string): boolean {
  const a = version.split('.').map(Number);
  const b = than.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}

function target(ok: boolean | null): string {
  return ok === null ? 'not measured' : ok ? '**met**' : '**not met**';
}

/** One stack's figure against a target's limit. */
export interface TargetFigure {
  id: string;
  label: string;
  value: number;
  met: boolean;
  /** For an overhead: its lowest and highest pass (each pass's figure less the bare framework's in that pass). */
  passes?: [number, number] | null;
  /** For a target relative to an anchor: value ÷ the anchor's, and the lowest and highest of that ratio paired pass by pass. */
  share?: { median: number; passes: [number, number] | null };
}

/** Issue 6's targets, judged from one run: every Tether figure each target names, and whether it holds. */
export interface TargetChecks {
  /** Read overhead of each tiered-over-Redis stack, limit 5 µs. */
  reads: TargetFigure[];
  /** Read overhead of the floor stack (cookie parse, one SHA-256, a Map lookup) on Fastify; null when not measured. */
  floorReadUs: number | null;
  /**
   * The same floor as one Express middleware: the median, its lowest and highest pass, and bare
   * Express's own CPU per read, since there the overhead is a difference of two large, noisy figures.
   */
  expressFloorRead: { us: number; passes: [number, number] | null; frameworkUs: number | null } | null;
  /** @fastify/session's write overhead, whose half is the write limit; null when not measured. */
  fastifySessionWriteUs: number | null;
  /** Write overhead of each Redis-backed Tether stack (server and redis-server CPU). */
  writes: TargetFigure[];
  /** @fastify/session's write overhead in the server process alone (the issue's definition); null when not measured. */
  fastifySessionServerWriteUs: number | null;
  /** The same comparison in the server process alone. */
  serverWrites: TargetFigure[];
  /** Lost updates of each Tether stack; met only when every write was answered 200 and counted. */
  lostUpdates: TargetFigure[];
  /** express-session's MemoryStore bytes per session, whose half is the memory limit; null when not measured. */
  expressSessionBytes: number | null;
  memory: TargetFigure[];
}

export const READ_LIMIT_US = 5;
const TIERED_STACKS = ['tether-express-tiered', 'tether-fastify-tiered', 'tether-express-tiered-eventual', 'tether-fastify-tiered-eventual'];
const REDIS_STACKS = ['tether-express-redis', 'tether-fastify-redis', ...TIERED_STACKS];

/** The lowest and highest of per-pass figures; null for fewer than two passes, where there is no spread to give. */
function range(p: readonly number[] | undefined): [number, number] | null {
  return p !== undefined && p.length > 1 ? [Math.min(...p), Math.max(...p)] : null;
}

function spread(read: ScenarioSummary | undefined, frameworkUs: number | null): TargetChecks['expressFloorRead'] {
  if (read?.overheadUs == null) return null;
  return { us: read.overheadUs, passes: range(read.overheadByPassUs), frameworkUs };
}

export function targetChecks(r: Pick<RunFile, 'stacks' | 'memory'>): TargetChecks {
  const by = (id: string) => r.stacks.find((s) => s.id === id);
  const figures = (ids: readonly string[], sc: 'read' | 'write', met: (v: number) => boolean): TargetFigure[] => ids.flatMap((id) => {
    const v = by(id)?.results[sc]?.overheadUs;
    return v === undefined || v === null ? [] : [{ id, label: by(id)!.label, value: v, met: met(v), passes: range(by(id)!.results[sc]!.overheadByPassUs) }];
  });
  const anchorWrite = by('fastify-session-redis')?.results.write;
  const fsw = anchorWrite?.overheadUs ?? null;
  const fss = anchorWrite?.serverOverheadUs ?? null;
  /** Each Redis-backed stack's write overhead (`pick`) against half of the anchor's (`limit`). */
  const halves = (limit: number | null, pick: (w: ScenarioSummary) => number | null | undefined, perPass: boolean): TargetFigure[] =>
    limit === null ? [] : REDIS_STACKS.flatMap((id) => {
      const w = by(id)?.results.write;
      const v = w ? pick(w) : undefined;
      if (v === undefined || v === null) return [];
      const mine = w!.overheadByPassUs;
      const theirs = anchorWrite?.overheadByPassUs;
      const ratios = perPass && mine && theirs ? mine.flatMap((x, i) => (theirs[i] ? [x / theirs[i]] : [])) : [];
      return [{
        id, label: by(id)!.label, value: v, met: v <= limit / 2,
        share: { median: v / limit, passes: range(ratios) },
      }];
    });
  const mem = (id: string) => r.memory?.subjects.find((m) => m.subject === id);
  const es = mem('express-session-memory')?.bytesPerSession ?? null;
  return {
    reads: figures(TIERED_STACKS, 'read', (v) => v <= READ_LIMIT_US),
    floorReadUs: by('fastify-floor')?.results.read?.overheadUs ?? null,
    expressFloorRead: spread(by('express-floor')?.results.read, by('express-bare')?.results.read?.cpuUs ?? null),
    fastifySessionWriteUs: fsw,
    writes: halves(fsw, (w) => w.overheadUs, true),
    fastifySessionServerWriteUs: fss,
    serverWrites: halves(fss, (w) => w.serverOverheadUs, false),
    lostUpdates: r.stacks.filter((s) => s.layer === 'tether' && s.race).map((s) => ({
      id: s.id, label: s.label, value: s.race!.lost, met: s.race!.lost === 0 && s.race!.ok === s.race!.sent,
    })),
    expressSessionBytes: es,
    memory: es === null ? [] : ['tether-memory', 'tether-tiered'].flatMap((id) => {
      const m = mem(id);
      return m?.bytesPerSession == null ? [] : [{ id, label: m.label, value: m.bytesPerSession, met: m.bytesPerSession <= es / 2 }];
    }),
  };
}

function targets(r: RunFile): string {
  const t = targetChecks(r);
  const list = (xs: TargetFigure[], unit: string, digits?: number) => xs.map((x) => `${x.label} ${num(x.value, digits)} ${unit} (${x.met ? 'met' : 'not met'})`).join(', ');
  const lines: string[] = [];
  lines.push(`- Reads, Tether with the tiered store over Redis, at most ${READ_LIMIT_US} µs of session overhead: ` +
    (t.reads.length ? t.reads.map((x) => `${x.label} ${num(x.value)} µs` + (x.passes ? ` (per pass ${num(x.passes[0])} to ${num(x.passes[1])})` : '') +
      ` (${x.met ? 'met' : 'not met'})`).join(', ') : 'not measured (no tiered store in this run)'));
  if (t.floorReadUs !== null) {
    lines.push(`- The floor under that target, in the same run: parsing the cookie, one SHA-256 of the ID (the store key SECURITY.md S7 requires) and a Map lookup, ` +
      `with nothing else, cost ${num(t.floorReadUs)} µs of overhead on Fastify ` +
      `(${t.floorReadUs <= READ_LIMIT_US ? 'within' : `${ratio(t.floorReadUs / READ_LIMIT_US)} of`} the ${READ_LIMIT_US} µs limit)` +
      (t.expressFloorRead === null ? '' : `; the same as one Express middleware, ${num(t.expressFloorRead.us)} µs` +
        (t.expressFloorRead.passes ? ` (per pass ${num(t.expressFloorRead.passes[0])} to ${num(t.expressFloorRead.passes[1])})` : '') +
        ` on Express` + (t.expressFloorRead.frameworkUs === null ? '' : `, whose own read costs ${num(t.expressFloorRead.frameworkUs)} µs: there an overhead is the difference of two large figures that move from pass to pass`)));
  }
  const fsw = t.fastifySessionWriteUs;
  const pct = (x: number) => `${Math.round(x * 100)} %`;
  const shares = (xs: TargetFigure[]) => xs.map((x) => `${x.label} ${num(x.value)} µs, ${pct(x.share!.median)}` +
    (x.share!.passes ? ` (per pass ${pct(x.share!.passes[0])}–${pct(x.share!.passes[1])})` : '') + ` (${x.met ? 'met' : 'not met'})`).join(', ');
  lines.push(`- Writes to Redis, at most half of @fastify/session's overhead (${fsw === null ? 'not measured' : `${num(fsw)} µs, so ≤ ${num(fsw / 2)} µs`}), ` +
    `counting redis-server's CPU with the server's: ` + (t.writes.length ? shares(t.writes) : 'not measured'));
  const fss = t.fastifySessionServerWriteUs;
  if (fss !== null && t.serverWrites.length) {
    lines.push(`- The same, by the issue's own definition of overhead (the server process's CPU alone; @fastify/session ${num(fss)} µs, so ≤ ${num(fss / 2)} µs): ` +
      shares(t.serverWrites));
  }
  lines.push(`- Zero lost updates: ` + (t.lostUpdates.length ? `${t.lostUpdates.map((x) => `${x.value}`).join(', ')} lost across the ${t.lostUpdates.length} Tether stacks → ${target(t.lostUpdates.every((x) => x.met))}` : 'not measured'));
  const es = t.expressSessionBytes;
  lines.push(`- Memory per session at most half of express-session's MemoryStore (${es === null ? 'not measured' : `${num(es, 0)} bytes, so ≤ ${num(es / 2, 0)}`}): ` +
    (t.memory.length ? list(t.memory, 'bytes', 0) : 'not measured'));
  return lines.join('\n');
}

function runSection(r: RunFile): string {
  const c = r.config;
  const out: string[] = [
    `## ${r.title}`,
    '',
    provenance(r),
    '',
    `Every stack serves the same routes and bodies (bench/lib/workload.ts); sessions hold about 200 bytes of JSON. ` +
      `autocannon runs in its own process with ${c.connections} connections; each server runs in its own process${c.serverNodeArgs?.length ? ` (run as \`node ${c.serverNodeArgs.join(' ')}\`)` : ''}, each Redis-backed stack has its own redis-server. ` +
      `${c.passes} measured pass(es) of ${c.durationS} s per scenario and stack, in rotating order${c.grouped ? ', each framework\'s stacks together around the framework without sessions' : ''}, after a ${c.warmupS} s warm-up; figures are medians over the passes. ` +
      `**CPU µs/req** is the server process's CPU (process.cpuUsage) plus, where sessions live in Redis, the redis-server's CPU time, divided by the requests handled: ` +
      `the steady figure on a shared machine, where requests/s and latency move with whatever else runs. ` +
      `**Overhead** is CPU µs/req minus that of the same framework without sessions in the same pass. ` +
      `**×node** compares with bare node:http in the same pass (requests/s: below 1 is slower; latency and CPU: above 1 costs more).`,
    '',
    'Configurations: express-session with `resave: false, saveUninitialized: false` (its README\'s advice); @fastify/session with its defaults ' +
      '(`rolling: true`, so every request saves the session and refreshes its TTL, its idle-timeout mechanism) but `saveUninitialized: false` and `cookie.secure: false` (plain HTTP); ' +
      'both on connect-redis over node-redis. Tether with its defaults: CSRF checks on (the token travels in `x-csrf-token`), idle timeout 30 min with touches at most once a minute.',
  ];
  if (r.versions['@fastify/session'] && olderThan(r.versions['@fastify/session'], '11.1.6')) {
    out.push('', `Note: issue 6 asks for @fastify/session 11.1.6 or later; ${r.versions['@fastify/session']} is installed and is the newest the npm registry has (\`npm view @fastify/session version\`).`);
  }
  if (r.leftOut.length) out.push('', `Left out of this run: ${r.leftOut.map((x) => `${x.id} (${x.reason})`).join('; ')}.`);
  const failed = r.stacks.filter((s) => s.error);
  if (failed.length) out.push('', `Failed in this run: ${failed.map((s) => `${s.id}: ${s.error}`).join('; ')}.`);
  out.push('', '### Targets (issue 6)', '', targets(r));
  out.push('', '### Session overhead, µs of CPU per request', '', table(
    ['Stack', ...c.scenarios, 'lost updates'],
    r.stacks.filter((s) => s.layer !== 'none').map((s) => [
      s.layer === 'tether' ? `**${s.label}**` : s.label,
      ...c.scenarios.map((sc) => num(s.results[sc]?.overheadUs)),
      s.race ? `${s.race.lost} of ${s.race.sent}` : '–',
    ]),
  ));
  out.push('', '![Server CPU per request by stack and scenario](benchmarks.svg)');
  for (const sc of c.scenarios) {
    out.push('', `### ${SCENARIO_TITLES[sc]}`, '', table(
      ['Stack', 'req/s', '×node', 'p50 ms', 'p50 ×node', 'p99 ms', 'p99 ×node', 'CPU µs/req (server + redis)', 'CPU ×node', 'overhead µs', 'Redis cmds per req: sent / run', 'errors'],
      stackRows(r, sc),
    ));
  }
  const redisStacks = r.stacks.filter((s) => c.scenarios.some((sc) => s.results[sc]?.census));
  if (redisStacks.length) {
    out.push('', '### Redis commands per request', '',
      'From a census after the measured passes: requests one at a time with MONITOR open, commands counted by origin. ' +
      '"Sent" are the commands the app sent (each a round trip unless pipelined); "in Lua" are those its scripts ran inside Redis. ' +
      'The per-scenario tables above give "sent / run": run counts every command Redis executed during the measured passes (INFO commandstats).', '',
      table(['Stack', ...c.scenarios], redisStacks.map((s) => [
        s.layer === 'tether' ? `**${s.label}**` : s.label,
        ...c.scenarios.map((sc) => {
          const x = s.results[sc]?.census;
          if (!x) return '–';
          const sent = Object.entries(x.byCommand).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${num(v)}`).join(', ');
          return `${num(x.clientCommands)} sent (${sent || 'none'}); ${num(x.scriptCommands)} in Lua`;
        }),
      ]), 'l' + 'l'.repeat(c.scenarios.length)));
  }
  const raced = r.stacks.filter((s) => s.race);
  if (raced.length) {
    out.push('', `### Lost updates: ${c.raceWrites} concurrent read-modify-writes on one session`, '',
      'Each request reads a counter, waits 1–5 ms (a database call), then writes counter + 1: the same naive handler on every stack. ' +
      'Lost = answered 200 but not counted.', '',
      table(['Stack', 'answered 200', 'other statuses', 'counter after', 'lost'], raced.map((s) => [
        s.layer === 'tether' ? `**${s.label}**` : s.label, s.race!.ok,
        Object.entries(s.race!.statuses).filter(([k]) => k !== '200').map(([k, v]) => `${v}× ${k}`).join(', ') || '–',
        s.race!.final, s.race!.lost,
      ])));
  }
  if (r.memory) {
    const es = r.memory.subjects.find((m) => m.subject === 'express-session-memory')?.bytesPerSession ?? null;
    out.push('', `### Memory: heap bytes per session`, '',
      `${r.memory.count.toLocaleString('en-US')} sessions of ${r.memory.dataBytes} bytes of JSON data each, held in one process started with --expose-gc; ` +
      '(heap used after GC with the sessions − before) ÷ sessions. express-session\'s entries hold what its middleware saves (data plus its cookie object).', '',
      table(['Held in', 'bytes per session', '× express-session'], r.memory.subjects.map((m) => [
        m.label, m.bytesPerSession === null ? `failed: ${m.error}` : num(m.bytesPerSession, 0), es && m.bytesPerSession ? ratio(m.bytesPerSession / es) : '–',
      ])));
  }
  return out.join('\n');
}

function genericSection(r: ResultsFile): string {
  const out = [`## ${r.title}`, ''];
  if ((r as Partial<Common>).machine && (r as Partial<Common>).versions && (r as Partial<Common>).command) out.push(provenance(r as Common), '');
  else out.push(`Generated ${r.generatedAt}.`, '');
  if (r.summary) out.push(r.summary, '');
  for (const t of r.tables ?? []) {
    if (t.title) out.push(`### ${t.title}`, '');
    out.push(table(t.columns, t.rows), '');
    if (t.note) out.push(t.note, '');
  }
  return out.join('\n').trimEnd();
}

function chartOf(run: RunFile | null, core: CoreFile | null): string | null {
  if (run) {
    const rows: ChartRow[] = run.stacks.filter((s) => Object.keys(s.results).length).map((s) => ({
      label: s.label, emphasis: s.layer === 'tether', values: run.config.scenarios.map((sc) => s.results[sc]?.cpuUs ?? null),
    }));
    return barChart({
      title: 'Server CPU per request (server process + redis-server), lower is better',
      subtitle: `${run.command}, ${run.generatedAt.slice(0, 10)}, ${run.machine.cpu} × ${run.machine.cores}${run.quick ? ' (quick run)' : ''}`,
      unit: 'µs of CPU per request', series: run.config.scenarios.map((s) => SCENARIO_TITLES[s]!.split(' (')[0]!.split(':')[0]!), rows,
    });
  }
  if (core) {
    return barChart({
      title: 'Tether on node:http: CPU per request, lower is better',
      subtitle: `${core.command}, ${core.generatedAt.slice(0, 10)}, ${core.machine.cpu} × ${core.machine.cores}`,
      unit: 'µs of CPU per request', series: ['bare node:http', 'Tether + MemoryStore'],
      rows: core.routes.map((x) => ({ label: x.route, values: [x.bare.cpuUs, x.tether.cpuUs] })),
    });
  }
  return null;
}

export interface ReportPaths {
  /** Where the results files are read from. @default bench/results */
  resultsDir?: string;
  /** Where benchmarks.md and benchmarks.svg are written. @default docs */
  docsDir?: string;
  /** The hand-written analysis appended to the page, if the file exists. @default bench/analysis.md */
  analysis?: string;
}

/** Regenerates docs/benchmarks.md (and docs/benchmarks.svg); returns the paths written. */
export function renderReport(paths: ReportPaths = {}): string[] {
  const resultsDir = paths.resultsDir ?? RESULTS_DIR;
  const docsDir = paths.docsDir ?? `${ROOT}docs`;
  const files = existsSync(resultsDir) ? readdirSync(resultsDir).filter((f) => f.endsWith('.json')).sort() : [];
  const loaded = new Map(files.map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(`${resultsDir}/${f}`, 'utf8')) as ResultsFile]));
  const core = (loaded.get('core') as CoreFile | undefined) ?? null;
  const run = (loaded.get('run') as RunFile | undefined) ?? null;
  const parts = [
    '# Benchmarks',
    '',
    '<!-- Generated by bench/report.ts from bench/results/*.json and bench/analysis.md: do not edit by hand. -->',
    '',
    'Rerun on your machine: `npm run bench` (everything, about 20 minutes; `-- --quick` for a two-minute smoke run), ' +
      '`npm run bench:core` (the engine alone on node:http), `npm run bench:stores` (store operations). ' +
      'Each writes bench/results/<name>.json and regenerates this page. ' +
      'To weigh a change: `npm run bench:compare` measures this checkout against a commit (`-- --base REF`, HEAD by default) ' +
      'on the same stacks in alternating rounds, and prints the median of the round-by-round differences. ' +
      'Both take `-- --sessions N` to rotate over N sessions instead of 1,000.',
  ];
  if (run) parts.push('', runSection(run));
  if (core) parts.push('', coreSection(core));
  // Files without `bench` and `title` belong to benches that render their own page (bench/ha.ts → docs/ha-report.md).
  for (const [name, r] of loaded) if (name !== 'core' && name !== 'run' && r.bench && r.title) parts.push('', genericSection(r));
  const analysis = paths.analysis ?? `${ROOT}bench/analysis.md`;
  if (existsSync(analysis)) parts.push('', readFileSync(analysis, 'utf8').trim());
  const md = `${docsDir}/benchmarks.md`;
  writeFileSync(md, parts.join('\n') + '\n');
  const written = [md];
  const svg = chartOf(run, core);
  if (svg) {
    writeFileSync(`${docsDir}/benchmarks.svg`, svg);
    written.push(`${docsDir}/benchmarks.svg`);
  }
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const p of renderReport()) console.log(`wrote ${p}`);
}
