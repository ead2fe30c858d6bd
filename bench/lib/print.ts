/** The console summary a benchmark prints at the end (the same figures as the generated report). @module */
import type { StackSummary } from './summary.js';
import type { MemoryResults } from './memory.js';

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

const f = (v: number | null | undefined, d = 1): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));

export function printRun(r: { stacks: StackSummary[]; memory: MemoryResults | null; config: { scenarios: readonly string[] } }): void {
  for (const sc of r.config.scenarios) {
    console.log(`\n${sc}: req/s   ×node   p50 ms  ×node  p99 ms  ×node  CPU µs/req  ×node  overhead µs  redis sent/run`);
    for (const s of r.stacks) {
      const x = s.results[sc as keyof typeof s.results];
      if (!x) {
        if (s.error) console.log(`  ${pad(s.id, 28)} ${s.error}`);
        continue;
      }
      console.log(`  ${pad(s.id, 28)}${pad(f(x.rps, 0), 7, true)} ${pad(f(x.vsNode?.rps, 2), 6, true)} ${pad(f(x.p50Ms, 2), 8, true)} ${pad(f(x.vsNode?.p50, 2), 6, true)} ${pad(f(x.p99Ms, 2), 7, true)} ${pad(f(x.vsNode?.p99, 2), 6, true)}` +
        ` ${pad(f(x.cpuUs), 11, true)} ${pad(f(x.vsNode?.cpu, 2), 6, true)} ${pad(f(x.overheadUs), 12, true)} ${pad(x.commandsPerRequest === null ? '–' : `${x.census ? f(x.census.clientCommands, 2) : '–'}/${f(x.commandsPerRequest, 2)}`, 15, true)}` +
        `${x.non2xx || x.errors ? `  (${x.non2xx} non-2xx, ${x.errors} errors)` : ''}`);
    }
  }
  const raced = r.stacks.filter((s) => s.race);
  if (raced.length) {
    console.log('\nlost updates (50 concurrent read-modify-writes on one session):');
    for (const s of raced) console.log(`  ${pad(s.id, 28)} ${s.race!.ok}/${s.race!.sent} answered 200, counter ${s.race!.final}, lost ${s.race!.lost}`);
  }
  if (r.memory) {
    console.log(`\nmemory (${r.memory.count} sessions of ~${r.memory.dataBytes} bytes of data):`);
    for (const m of r.memory.subjects) console.log(`  ${pad(m.label, 36)} ${m.bytesPerSession === null ? m.error : `${Math.round(m.bytesPerSession)} bytes/session`}`);
  }
}
