/**
 * Turns per-pass figures into the medians a results file holds: each figure, its ratio to bare
 * node:http measured in the same pass, and session overhead (CPU per request minus the same framework
 * without sessions, in the same pass).
 * @module
 */
import type { PassFigures, Scenario, StackOutcome } from './harness.js';
import type { RaceResult } from './http.js';
import type { Census } from './census.js';
import { median, round } from './stats.js';

export interface ScenarioSummary {
  passes: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Server process CPU per request, µs. */
  serverCpuUs: number;
  /** Of which kernel time (socket system calls, wake-ups). */
  serverSystemUs: number;
  /** redis-server CPU per request, µs. */
  storeCpuUs: number;
  /** Both: the figure overhead and ratios use. */
  cpuUs: number;
  commandsPerRequest: number | null;
  /** Redis commands of one request by origin, from the MONITOR census (outside the measured passes). */
  census: Census | null;
  /** cpuUs minus the same framework without sessions; null for the bare stacks themselves. */
  overheadUs: number | null;
  /** That difference in each pass (its median is overheadUs), so ratios between stacks can be paired by pass. */
  overheadByPassUs?: number[];
  /** serverCpuUs minus the same framework's: the server process's own share of the overhead, store CPU left out. */
  serverOverheadUs?: number | null;
  /** Against bare node:http in the same pass: rps ratio (<1 is slower), latency and CPU ratios (>1 costs more). */
  vsNode: { rps: number; p50: number; p99: number; cpu: number } | null;
  non2xx: number;
  errors: number;
}

export interface StackSummary {
  id: string;
  label: string;
  framework: string;
  layer: string;
  store: string;
  baseline: string;
  error?: string;
  results: Partial<Record<Scenario, ScenarioSummary>>;
  race?: RaceResult;
}

const cpuOf = (f: PassFigures): number => f.serverCpuUs + f.storeCpuUs;

export function summarise(outcomes: readonly StackOutcome[], scenarios: readonly Scenario[], limitId = 'node-bare'): StackSummary[] {
  const byId = new Map(outcomes.map((o) => [o.stack.id, o]));
  const limit = byId.get(limitId);
  return outcomes.map((o) => {
    const s = o.stack;
    const out: StackSummary = {
      id: s.id, label: s.label, framework: s.framework, layer: s.layer, store: s.store, baseline: s.baseline, results: {},
    };
    if (o.error) out.error = o.error;
    if (o.race) out.race = o.race;
    for (const sc of scenarios) {
      const mine = o.passes[sc];
      if (!mine || mine.length === 0) continue;
      const base = s.layer === 'none' ? undefined : byId.get(s.baseline)?.passes[sc];
      const lim = limit?.passes[sc];
      const pairs = <T>(other: PassFigures[] | undefined, f: (a: PassFigures, b: PassFigures) => T): T[] =>
        other ? mine.flatMap((m, i) => (other[i] ? [f(m, other[i])] : [])) : [];
      const overheadByPass = pairs(base, (m, b) => cpuOf(m) - cpuOf(b));
      const commands = mine.map((m) => m.commandsPerRequest).filter((x): x is number => x !== null);
      out.results[sc] = {
        passes: mine.length,
        rps: round(median(mine.map((m) => m.rps))),
        p50Ms: round(median(mine.map((m) => m.p50Ms))),
        p99Ms: round(median(mine.map((m) => m.p99Ms))),
        serverCpuUs: round(median(mine.map((m) => m.serverCpuUs))),
        serverSystemUs: round(median(mine.map((m) => m.serverSystemUs))),
        storeCpuUs: round(median(mine.map((m) => m.storeCpuUs))),
        cpuUs: round(median(mine.map(cpuOf))),
        commandsPerRequest: commands.length ? round(median(commands)) : null,
        census: o.census?.[sc] ?? null,
        overheadUs: base ? round(median(overheadByPass)) : null,
        overheadByPassUs: overheadByPass.map(round),
        serverOverheadUs: base ? round(median(pairs(base, (m, b) => m.serverCpuUs - b.serverCpuUs))) : null,
        vsNode: lim ? {
          rps: round(median(pairs(lim, (m, b) => m.rps / b.rps))),
          p50: round(median(pairs(lim, (m, b) => m.p50Ms / b.p50Ms))),
          p99: round(median(pairs(lim, (m, b) => m.p99Ms / b.p99Ms))),
          cpu: round(median(pairs(lim, (m, b) => cpuOf(m) / cpuOf(b)))),
        } : null,
        non2xx: mine.reduce((a, m) => a + m.non2xx, 0),
        errors: mine.reduce((a, m) => a + m.errors, 0),
      };
    }
    return out;
  });
}
