/**
 * The package as a user installs it: `npm pack` from a checkout without dist/ builds it (prepack), the
 * tarball holds what every export and the `tether` command need and nothing of the repository's own
 * (tests, the shop), and a consumer project loads every subpath and runs the command with plain Node
 * (no tsx, no `tether-source` condition) and type-checks against the packed declarations.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { SpawnSyncOptions } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  files: string[];
  exports: Record<string, string | Record<string, string>>;
  typesVersions: Record<string, Record<string, string[]>>;
};
/** What the build needs besides the files the package ships. */
const BUILD_INPUTS = ['tsconfig.json', 'tsconfig.build.json'];

function run(cmd: string, args: string[], options: SpawnSyncOptions): string {
  const out = spawnSync(cmd, args, { encoding: 'utf8', timeout: 240_000, ...options });
  assert.equal(out.status, 0, `${cmd} ${args.join(' ')} failed (${out.signal ?? out.status}):\n${String(out.stdout).slice(-2000)}\n${String(out.stderr).slice(-2000)}`);
  return String(out.stdout);
}

/** Every file an export names for plain Node or for TypeScript (not the source condition). */
function exportTargets(): string[] {
  return Object.values(pkg.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.entries(t).filter(([c]) => c !== 'tether-source').map(([, f]) => f)))
    .map((f) => f.replace(/^\.\//, ''));
}

function subpaths(): string[] {
  return Object.entries(pkg.exports).filter(([, t]) => typeof t === 'object').map(([s]) => (s === '.' ? pkg.name : `${pkg.name}/${s.slice(2)}`));
}

/** An app that uses every subpath's main exports, its session data typed. */
const CONSUMER_APP = `
import { createTether, MemoryStore, TetherError, type Session } from '${pkg.name}';
import { sessions } from '${pkg.name}/express';
import tetherPlugin from '${pkg.name}/fastify';
import { defineFlow, sessionFlows } from '${pkg.name}/flow';
import { RedisStore } from '${pkg.name}/redis';
import { registerTetherMetrics } from '${pkg.name}/observability';

type Data = { visits: number };
const tether = createTether<Data>({ secrets: ['x'.repeat(32)], store: new MemoryStore() });
const flow = defineFlow({ name: 'signup', steps: [{ name: 'plan', parse: (v: unknown) => String(v) }, { name: 'done' }] }).using(sessionFlows);
export function visits(s: Session<Data>): number {
  // @ts-expect-error the data is typed: a string is not a count
  s.data.visits = 'many';
  return s.data.visits ?? 0;
}
export const parts = [sessions(tether), tetherPlugin, flow, RedisStore, registerTetherMetrics, TetherError] as const;
export async function closing(): Promise<number> {
  await using store = new MemoryStore();
  await using engine = createTether({ secrets: ['x'.repeat(32)], store });
  return engine.stats().created;
}
`;

describe('the packed package', { timeout: 600_000 }, () => {
  let dir: string;
  let files: string[];
  /** Whether dist/ was still in the checkout after the pack (the command would run that build, not the sources, from then on). */
  let leftDist = true;
  let tarball: string;
  let consumer: string;

  /**
   * A project in `dir/name` with the packed package installed, and its dependencies and the peers a user
   * adds as installed for this repository (not tsx, which only a source checkout uses: bin/tether.js
   * falls back to it when there is no dist/). `swap` installs a package under another name's folder
   * (`{ ioredis: 'ioredis5' }`), or leaves one out (null).
   */
  function consumerWith(name: string, swap: Record<string, string | null> = {}): string {
    const project = join(dir, name);
    const modules = join(project, 'node_modules');
    mkdirSync(join(modules, pkg.name), { recursive: true });
    run('tar', ['-xzf', tarball, '-C', join(modules, pkg.name), '--strip-components=1'], {});
    for (const entry of readdirSync(join(root, 'node_modules'))) {
      if (entry === pkg.name || entry === 'tsx' || entry.startsWith('.') || entry in swap) continue;
      symlinkSync(join(root, 'node_modules', entry), join(modules, entry), 'dir');
    }
    for (const [as, from] of Object.entries(swap)) if (from !== null) symlinkSync(join(root, 'node_modules', from), join(modules, as), 'dir');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
    return project;
  }

  /**
   * Type-checks `source` as `app.ts` of `project`, strict and with the packed declarations checked too,
   * with the TypeScript installed as `compiler` in this repository (`typescript7`: the next major).
   * Its dependencies' declarations are checked as well (`skipLibCheck: false`): ioredis 6.1's import the
   * untyped `redis-errors`, so such a project needs `@types/redis-errors`, a devDependency here for that.
   */
  function typeCheck(project: string, source: string, compiler = 'typescript', extra: Record<string, unknown> = {}): void {
    writeFileSync(join(project, 'app.ts'), source);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], ...extra },
      files: ['app.ts'],
    }));
    run(process.execPath, [join(root, 'node_modules', compiler, 'bin', 'tsc'), '-p', project], { cwd: project });
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tether-pack-'));
    const checkout = join(dir, 'checkout');
    mkdirSync(checkout);
    // A checkout as git gives it: the shipped sources and the build's configuration, no dist/.
    for (const f of [...pkg.files.filter((f) => f !== 'dist'), ...BUILD_INPUTS, 'package.json']) cpSync(join(root, f), join(checkout, f), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(checkout, 'node_modules'), 'dir');
    const out = join(dir, 'out');
    mkdirSync(out);
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', out], { cwd: checkout, env: { ...process.env, npm_config_loglevel: 'error' } })) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = packed!.files.map((f) => f.path);
    leftDist = existsSync(join(checkout, 'dist'));

    tarball = join(out, packed!.filename);
    consumer = consumerWith('consumer');
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('npm pack when run from a checkout without dist then builds it, ships every export\'s files, the command and the licence, and none of the repository\'s own, and leaves no dist behind', () => {
    for (const target of exportTargets()) assert.ok(files.includes(target), `${target} is packed`);
    assert.ok(files.includes('bin/tether.js'));
    assert.ok(files.includes('dist/cli/index.js'), 'the command runs the built CLI');
    assert.ok(files.includes('README.md'));
    assert.ok(files.includes('LICENSE'), 'the licence the package declares');
    assert.ok(files.includes('HISTORY.md'));
    assert.equal(leftDist, false, 'postpack removes the build');
    const foreign = files.filter((f) => /^(test|apps|bench|scripts|examples|\.ci)\//.test(f) || f.endsWith('.tsbuildinfo'));
    assert.deepEqual(foreign, []);
  });

  it('a consumer when it imports every subpath with plain node then each loads from dist', () => {
    const probe = `
      const out = {};
      for (const s of ${JSON.stringify(subpaths())}) {
        const m = await import(s);
        out[s] = { url: import.meta.resolve(s), exports: Object.keys(m).length };
      }
      console.log(JSON.stringify(out));`;
    const report = JSON.parse(run(process.execPath, ['--input-type=module', '-e', probe], { cwd: consumer, env: { ...process.env, NODE_OPTIONS: '' } })) as Record<string, { url: string; exports: number }>;
    assert.deepEqual(Object.keys(report), subpaths());
    for (const [s, { url, exports }] of Object.entries(report)) {
      assert.match(url, new RegExp(`/node_modules/${pkg.name}/dist/.+\\.js$`), s);
      assert.ok(exports > 0, `${s} exports something`);
    }
  });

  it('a consumer when it runs the tether command then it answers from dist without tsx', () => {
    const help = run(process.execPath, [join(consumer, 'node_modules', pkg.name, 'bin', 'tether.js'), '--help'], { cwd: consumer, env: { ...process.env, NODE_OPTIONS: '' } });
    assert.match(help, /^Usage: tether <command>/);
  });

  it('a consumer when it type-checks code using the package then the packed declarations resolve, strict, with no errors in them', () => {
    typeCheck(consumer, CONSUMER_APP);
  });

  it('a consumer with exactOptionalPropertyTypes when it type-checks the README\'s way of passing secrets then it compiles', () => {
    const strictest = consumerWith('consumer-strictest');
    // Every README example reads the secrets so: undefined when TETHER_SECRET is unset (a generated one).
    typeCheck(strictest, `
import { createTether } from '${pkg.name}';
export const tether = createTether<{ visits: number }>({ secrets: process.env.TETHER_SECRET?.split(',') });
`, 'typescript', { exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true });
  });

  it('a consumer on the node10 resolution (module commonjs, TypeScript 5) when it type-checks the same code then main, types and typesVersions lead to the declarations', () => {
    const legacy = consumerWith('consumer-node10');
    typeCheck(legacy, CONSUMER_APP, 'typescript', { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true });
    const typesVersions = pkg.typesVersions['*']!;
    for (const [subpath, entry] of Object.entries(pkg.exports)) {
      if (subpath === '.' || typeof entry !== 'object' || entry.types === undefined) continue;
      assert.deepEqual(typesVersions[subpath.slice(2)], [entry.types.slice(2)], `typesVersions maps ${subpath} as exports does`);
    }
  });

  it('a consumer on TypeScript 7 when it type-checks the same code then the packed declarations pass there too', () => {
    const next = consumerWith('consumer-typescript7');
    typeCheck(next, CONSUMER_APP, 'typescript7');
    assert.match(run(process.execPath, [join(root, 'node_modules', 'typescript7', 'bin', 'tsc'), '--version'], {}), /^Version 7\./);
  });

  /**
   * Imports `name` from the package's `subpath` in `project` with plain node and builds one from `args`
   * (source text): `{ built: true }`, or the code and message of what the constructor threw.
   */
  function buildIn(project: string, subpath: string, name: string, args: string): { built?: boolean; code?: string; message?: string } {
    const probe = `
      const { ${name} } = await import('${pkg.name}/${subpath}');
      try {
        new ${name}(${args});
        console.log(JSON.stringify({ built: true }));
      } catch (err) {
        console.log(JSON.stringify({ code: err.code, message: err.message }));
      }
      process.exit(0);`;
    return JSON.parse(run(process.execPath, ['--input-type=module', '-e', probe], { cwd: project, env: { ...process.env, NODE_OPTIONS: '' } })) as { built?: boolean; code?: string; message?: string };
  }

  it('a consumer without ioredis when it imports tether/redis then it loads, and building a store says what to install', () => {
    const bare = consumerWith('consumer-no-ioredis', { ioredis: null, ioredis5: null });
    const result = buildIn(bare, 'redis', 'RedisStore', '');
    assert.equal(result.code, 'OPTIONS_INVALID');
    assert.match(result.message ?? '', /needs the ioredis package \(npm install ioredis\)/);
  });

  /** Installs this repository's type packages in `project` but those named in `left`. */
  function typesWithout(project: string, left: string[]): void {
    const types = join(project, 'node_modules', '@types');
    mkdirSync(types);
    for (const entry of readdirSync(join(root, 'node_modules', '@types'))) {
      if (!left.includes(entry)) symlinkSync(join(root, 'node_modules', '@types', entry), join(types, entry), 'dir');
    }
  }

  it('a consumer without @types/better-sqlite3 when it type-checks code using tether/sqlite then the packed declarations need none of the driver\'s types', () => {
    const project = consumerWith('consumer-no-sqlite-types', { '@types': null });
    typesWithout(project, ['better-sqlite3']);
    typeCheck(project, `
import { createTether } from '${pkg.name}';
import { SqliteStore, SCHEMA_VERSION, type ChangeFeedOptions } from '${pkg.name}/sqlite';
import { createStore } from '${pkg.name}/stores';

const options: ChangeFeedOptions = { onResync: () => {} };
export const store = new SqliteStore({ path: ':memory:' });
export const unsubscribe = store.subscribe(() => {}, options);
export const tether = createTether({ secrets: ['x'.repeat(32)], store: await createStore('sqlite::memory:') });
export const version: number = SCHEMA_VERSION;
`);
  });

  it('a consumer with neither ioredis nor pg when it type-checks code using createStore then the packed declarations of tether/stores reach neither driver\'s types', () => {
    const project = consumerWith('consumer-no-drivers', { ioredis: null, ioredis5: null, pg: null, '@types': null });
    typesWithout(project, ['pg', 'better-sqlite3']);
    typeCheck(project, `
import { createTether } from '${pkg.name}';
import { createStore, parseStoreUrl, type PostgresUrlOptions, type RedisUrlOptions, type StoreTarget } from '${pkg.name}/stores';

export const tether = createTether({ secrets: ['x'.repeat(32)], store: await createStore(process.env.TETHER_STORE ?? 'sqlite:') });
export const target: StoreTarget = parseStoreUrl('redis://127.0.0.1:6379?keyPrefix=app:');
export const redis: RedisUrlOptions = { keyPrefix: 'app:', reportExpired: true };
export const postgres: PostgresUrlOptions = { tableName: 'sessions' };
`);
  });

  it('a consumer without pg when it imports tether/postgres then it loads, and building a store or running the command on a postgres URL says what to install', () => {
    const bare = consumerWith('consumer-no-pg', { pg: null });
    const result = buildIn(bare, 'postgres', 'PostgresStore', "{ connectionString: 'postgres://127.0.0.1:1/none' }");
    assert.equal(result.code, 'OPTIONS_INVALID');
    assert.match(result.message ?? '', /needs the pg package \(npm install pg\)/);

    const cli = spawnSync(process.execPath, [join(bare, 'node_modules', pkg.name, 'bin', 'tether.js'), 'sessions', 'count', '--store', 'postgres://127.0.0.1:1/none'],
      { cwd: bare, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    assert.equal(cli.status, 2, cli.stderr);
    assert.match(cli.stderr, /^tether sessions: PostgresStore needs the pg package \(npm install pg\)/);
    assert.doesNotMatch(cli.stderr, /\n\s+at /, 'no stack trace');
  });

  describe('on ioredis 5, the older major of the peer range', () => {
    let redis: RedisServer;
    let older: string;
    before(async () => {
      redis = await startRedis();
      older = consumerWith('consumer-ioredis5', { ioredis: 'ioredis5' });
    });
    after(async () => {
      await redis?.dispose();
    });

    it('a consumer on ioredis 5 when it runs the store conformance suite against RedisStore then every case passes, and the packed declarations type-check', () => {
      // What the consumer resolves is ioredis 5, not the repository's own.
      const version = run(process.execPath, ['--input-type=module', '-e', "import { createRequire } from 'node:module'; console.log(createRequire(import.meta.url)('ioredis/package.json').version)"], { cwd: older, env: { ...process.env, NODE_OPTIONS: '' } }).trim();
      assert.match(version, /^5\./);
      writeFileSync(join(older, 'redis-suite.test.js'), `
import { RedisStore } from '${pkg.name}/redis';
import { runStoreSuite } from '${pkg.name}/testing';
const url = process.env.SUITE_REDIS_URL;
let made = 0;
const prefixOf = new WeakMap();
runStoreSuite({
  name: 'redis on ioredis 5',
  lacks: { sweep: true },
  limits: true,
  destroysAll: true,
  regenerates: true,
  open: async (clock) => {
    const keyPrefix = 'v5-' + ++made + ':';
    const store = new RedisStore({ url, keyPrefix, clock });
    prefixOf.set(store, keyPrefix);
    store.subscribe(() => {})();
    return store;
  },
  connect: async (store, clock) => new RedisStore({ url, keyPrefix: prefixOf.get(store), clock }),
});
`);
      // A run of its own, not a subtest of this one: without the runner's NODE_TEST_CONTEXT it prints its summary.
      const { NODE_TEST_CONTEXT: _ours, ...env } = process.env;
      const suite = spawnSync(process.execPath, ['--test', '--test-reporter=tap', 'redis-suite.test.js'],
        { cwd: older, encoding: 'utf8', timeout: 300_000, env: { ...env, NODE_OPTIONS: '', SUITE_REDIS_URL: redis.url } });
      const summary = (name: string): number => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(suite.stdout)?.[1] ?? NaN);
      assert.equal(suite.status, 0, `the suite failed:\n${suite.stdout.slice(-4000)}\n${suite.stderr.slice(-2000)}`);
      assert.equal(summary('fail'), 0);
      assert.equal(summary('cancelled'), 0);
      assert.equal(summary('skipped'), 0);
      // Every case the suite declares ran and passed: 38 of them when this was written.
      assert.equal(summary('pass'), summary('tests'));
      assert.ok(summary('pass') >= 38, `${summary('pass')} cases passed`);

      typeCheck(older, `
import { Redis } from 'ioredis';
import { RedisStore, redisClientOptions } from '${pkg.name}/redis';
export const store = new RedisStore({ client: new Redis(6379, '127.0.0.1', redisClientOptions()) });
`);
    });
  });
});
