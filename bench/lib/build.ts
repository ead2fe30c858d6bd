/**
 * Compiles what the benchmark runs (the server under test, the load generator, the memory probe) to
 * plain JavaScript before a run, the way users run Tether: compiled, not through a TypeScript loader.
 *
 * Why: tsx transpiles with esbuild's keepNames, which wraps every named closure in a `__name()` call
 * (Object.defineProperty, about a microsecond each on this machine) each time it is created. Compiled
 * output (tsc or esbuild without keepNames) has none of it, and neither do the anchors, which ship JS.
 * esbuild (installed with tsx) bundles each entry with Tether's sources (`tether`, `tether/*` resolved
 * through the package's `tether-source` exports); every other package stays external and loads from
 * node_modules, as in an app. The output goes to node_modules/.cache/tether-bench.
 * @module
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { build } from 'esbuild';
import type { BuildOptions, Plugin } from 'esbuild';
import { ROOT } from './procs.js';

export const BUILD_DIR = `${ROOT}node_modules/.cache/tether-bench`;

export interface BenchBuild {
  server: string;
  load: string;
  memoryProbe: string;
}

/** Resolves `tether` and `tether/<sub>` to the TypeScript sources named by the exports of the package at `root`. */
function tetherSources(root: string): Plugin {
  const exportsMap = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { exports: Record<string, Record<string, string> | string> }).exports;
  return {
    name: 'tether-sources',
    setup(b) {
      b.onResolve({ filter: /^tether(\/.*)?$/ }, (args) => {
        const key = args.path === 'tether' ? '.' : `./${args.path.slice('tether/'.length)}`;
        const entry = exportsMap[key];
        const source = typeof entry === 'object' ? entry['tether-source'] : undefined;
        if (!source) return { errors: [{ text: `package.json exports has no tether-source entry for "${args.path}"` }] };
        return { path: `${root}${source.replace(/^\.\//, '')}` };
      });
    },
  };
}

/**
 * How every entry is compiled: bundled with Tether's sources from `root`, every package left external.
 * Each file is written under a temporary name and renamed into place, so a run that starts a server
 * while another run (a test, a second bench) rebuilds it never reads half a file.
 */
async function compile(root: string, options: BuildOptions): Promise<void> {
  const result = await build({
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    plugins: [tetherSources(root)],
    keepNames: false,
    logLevel: 'error',
    ...options,
    write: false,
  });
  for (const file of result.outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    const temporary = `${file.path}.${process.pid}.tmp`;
    writeFileSync(temporary, file.contents);
    renameSync(temporary, file.path);
  }
}

let built: Promise<BenchBuild> | null = null;

export function buildBench(): Promise<BenchBuild> {
  built ??= (async () => {
    await compile(ROOT, {
      entryPoints: {
        server: `${ROOT}bench/lib/server.ts`,
        load: `${ROOT}bench/lib/load.ts`,
        'memory-probe': `${ROOT}bench/lib/memory-probe.ts`,
      },
      outdir: BUILD_DIR,
      outExtension: { '.js': '.mjs' },
    });
    return { server: `${BUILD_DIR}/server.mjs`, load: `${BUILD_DIR}/load.mjs`, memoryProbe: `${BUILD_DIR}/memory-probe.mjs` };
  })();
  return built;
}

/**
 * The server under test compiled from another checkout of the project (`root`, ending in a slash: a
 * git worktree of an earlier commit, see bench/compare.ts) into `outfile`. Put the file under this
 * checkout (BUILD_DIR), so the packages it imports load from this checkout's node_modules.
 */
export async function buildServerFrom(root: string, outfile: string): Promise<void> {
  await compile(root, { entryPoints: [`${root}bench/lib/server.ts`], outfile });
}
