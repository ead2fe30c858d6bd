/** Command-line flags shared by the benchmark scripts. @module */

export interface BenchArgs {
  quick: boolean;
  json?: string;
  passes?: number;
  durationS?: number;
  connections?: number;
  sessions?: number;
  only?: string[];
  scenarios?: Array<'read' | 'write' | 'login'>;
  profileDir?: string;
  memory: boolean;
  report: boolean;
}

export const USAGE = `flags:
  --quick            short passes (a smoke run: about two minutes for npm run bench)
  --json FILE        also write the results to FILE
  --passes N         measured passes per scenario and stack (medians are taken over them)
  --duration S       seconds per measured pass
  --connections N    concurrent connections autocannon keeps open
  --sessions N       pre-created sessions the reads and writes rotate over (default 1,000)
  --only a,b         only these stacks (ids as printed), plus the bare ones they are compared with
  --scenarios a,b    only these scenarios (read, write, login)
  --profile DIR      V8 CPU profile (as --cpu-prof) of each measured pass: DIR/<stack>.<scenario>.<pass>.cpuprofile
                     (read one with: node --import tsx bench/profile-summary.ts FILE)
  --no-memory        skip the bytes-per-session measurement
  --no-report        do not regenerate docs/benchmarks.md and docs/benchmarks.svg`;

export function parseArgs(argv: readonly string[]): BenchArgs {
  const out: BenchArgs = { quick: false, memory: true, report: true };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!v || !Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case '--quick': out.quick = true; break;
      case '--json': if (!v) throw new Error(`--json needs a file\n${USAGE}`); out.json = v; i++; break;
      case '--passes': out.passes = Math.round(num(a, v)); i++; break;
      case '--duration': out.durationS = num(a, v); i++; break;
      case '--connections': out.connections = Math.round(num(a, v)); i++; break;
      case '--sessions': out.sessions = Math.round(num(a, v)); i++; break;
      case '--only': if (!v) throw new Error(`--only needs stack ids\n${USAGE}`); out.only = v.split(','); i++; break;
      case '--scenarios': {
        const list = (v ?? '').split(',');
        if (!v || list.some((x) => !['read', 'write', 'login'].includes(x))) throw new Error(`--scenarios takes read, write, login\n${USAGE}`);
        out.scenarios = list as BenchArgs['scenarios'];
        i++;
        break;
      }
      case '--profile': if (!v) throw new Error(`--profile needs a folder\n${USAGE}`); out.profileDir = v; i++; break;
      case '--no-memory': out.memory = false; break;
      case '--no-report': out.report = false; break;
      case '--help': case '-h': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown flag ${a}\n${USAGE}`);
    }
  }
  return out;
}

/** Flags of `npm run bench:compare` (bench/compare.ts). */
export const COMPARE_USAGE = `flags:
  --base REF         the commit to compare with (default HEAD: the working tree's changes are compared)
  --only a,b         stacks (ids as npm run bench prints them; default tether-fastify-memory,tether-fastify-redis)
  --scenarios a,b    read, write, login (default read,write)
  --rounds N         alternating rounds (default 6)
  --duration S       seconds per measurement (default 3)
  --sessions N       pre-created sessions the reads and writes rotate over (default 1,000)`;

export interface CompareArgs {
  base: string;
  only: string[];
  scenarios: Array<'read' | 'write' | 'login'>;
  rounds: number;
  durationS: number;
  sessions: number;
}

export function parseCompareArgs(argv: readonly string[]): CompareArgs {
  const out: CompareArgs = { base: 'HEAD', only: ['tether-fastify-memory', 'tether-fastify-redis'], scenarios: ['read', 'write'], rounds: 6, durationS: 3, sessions: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    const need = (what: string): string => {
      if (!v) throw new Error(`${a} needs ${what}\n${COMPARE_USAGE}`);
      i++;
      return v;
    };
    const positive = (): number => {
      const n = Number(need('a positive number'));
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${a} needs a positive number\n${COMPARE_USAGE}`);
      return n;
    };
    switch (a) {
      case '--base': out.base = need('a commit'); break;
      case '--only': out.only = need('stack ids').split(','); break;
      case '--scenarios': {
        const list = need('scenarios').split(',');
        if (list.some((x) => !['read', 'write', 'login'].includes(x))) throw new Error(`--scenarios takes read, write, login\n${COMPARE_USAGE}`);
        out.scenarios = list as CompareArgs['scenarios'];
        break;
      }
      case '--rounds': out.rounds = Math.round(positive()); break;
      case '--duration': out.durationS = positive(); break;
      case '--sessions': out.sessions = Math.round(positive()); break;
      case '--help': case '-h': console.log(COMPARE_USAGE); process.exit(0); break;
      default: throw new Error(`unknown flag ${a}\n${COMPARE_USAGE}`);
    }
  }
  return out;
}

/** The value of `--name`: a whole number from 1 to `max`, or an error saying so. */
export function wholeFlag(value: string, name: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be a whole number from 1 to ${max}`);
  return n;
}
