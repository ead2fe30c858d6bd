/** The console summary a benchmark prints at the end (the same figures as the generated report). @module */
import type { StackSummary } from './summary.js';
import type { MemoryResults } from './memory.js';
import { ID_WIDTH } from './stacks.js';

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** Column titles and widths (each right-aligned, its width counting the space before it). */
const COLUMNS: ReadonlyArray<readonly [string, number]> = [
  ['req/s', 8], ['×node', 7], ['p50 ms', 9], ['×node', 7], ['p99 ms', 8], ['×node', 7], ['CPU µs/req', 12], ['×node', 7], ['overhead µs', 13], ['redis sent/run', 16],
];

const f = (v: number | null | undefined, d = 1): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));

export function printRun(r: { stacks: StackSummary[]; memory: MemoryResults | null; config: { scenarios: readonly string[] } }): void {
  for (const sc of r.config.scenarios) {
    console.log(`\n${sc}:`);
    console.log(`  ${pad('', ID_WIDTH)}${COLUMNS.map(([title, width]) => pad(title, width, true)).join('')}`);
    for (const s of r.stacks) {
      const x = s.results[sc as keyof typeof s.results];
      if (!x) {
        if (s.error) console.log(`  ${pad(s.id, ID_WIDTH)} ${s.error}`);
        continue;
      }
      const cells = [
        f(x.rps, 0), f(x.vsNode?.rps, 2), f(x.p50Ms, 2), f(x.vsNode?.p50, 2), f(x.p99Ms, 2), f(x.vsNode?.p99, 2),
        f(x.cpuUs), f(x.vsNode?.cpu, 2), f(x.overheadUs),
        x.commandsPerRequest === null ? '–' : `${x.census ? f(x.census.clientCommands, 2) : '–'}/${f(x.commandsPerRequest, 2)}`,
      ];
      console.log(`  ${pad(s.id, ID_WIDTH)}${cells.map((c, i) => pad(c, COLUMNS[i]![1], true)).join('')}` +
        `${x.non2xx || x.errors ? `  (${x.non2xx} non-2xx, ${x.errors} errors)` : ''}`);
    }
  }
  const raced = r.stacks.filter((s) => s.race);
  if (raced.length) {
    console.log('\nlost updates (50 concurrent read-modify-writes on one session):');
    for (const s of raced) console.log(`  ${pad(s.id, ID_WIDTH)} ${s.race!.ok}/${s.race!.sent} answered 200, counter ${s.race!.final}, lost ${s.race!.lost}`);
  }
  if (r.memory) {
    console.log(`\nmemory (${r.memory.count} sessions of ~${r.memory.dataBytes} bytes of data):`);
    for (const m of r.memory.subjects) console.log(`  ${pad(m.label, 36)} ${m.bytesPerSession === null ? m.error : `${Math.round(m.bytesPerSession)} bytes/session`}`);
  }
}
