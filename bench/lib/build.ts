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
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';
import { ROOT } from './procs.js';

export const BUILD_DIR = `${ROOT}node_modules/.cache/tether-bench`;

export interface BenchBuild {
  server: string;
  load: string;
  memoryProbe: string;
}

/** Resolves `tether` and `tether/<sub>` to the TypeScript sources named by the package's exports. */
function tetherSources(): Plugin {
  const exportsMap = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { exports: Record<string, Record<string, string> | string> }).exports;
  return {
    name: 'tether-sources',
    setup(b) {
      b.onResolve({ filter: /^tether(\/.*)?$/ }, (args) => {
        const key = args.path === 'tether' ? '.' : `./${args.path.slice('tether/'.length)}`;
        const entry = exportsMap[key];
        const source = typeof entry === 'object' ? entry['tether-source'] : undefined;
        if (!source) return { errors: [{ text: `package.json exports has no tether-source entry for "${args.path}"` }] };
        return { path: `${ROOT}${source.replace(/^\.\//, '')}` };
      });
    },
  };
}

let built: Promise<BenchBuild> | null = null;

export function buildBench(): Promise<BenchBuild> {
  built ??= (async () => {
    await build({
      entryPoints: {
        server: `${ROOT}bench/lib/server.ts`,
        load: `${ROOT}bench/lib/load.ts`,
        'memory-probe': `${ROOT}bench/lib/memory-probe.ts`,
      },
      outdir: BUILD_DIR,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      plugins: [tetherSources()],
      keepNames: false,
      logLevel: 'error',
    });
    return { server: `${BUILD_DIR}/server.mjs`, load: `${BUILD_DIR}/load.mjs`, memoryProbe: `${BUILD_DIR}/memory-probe.mjs` };
  })();
  return built;
}
