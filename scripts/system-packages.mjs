// The Debian packages the test suite (and the benchmarks) start for real: installed when missing (as
// root with apt-get), otherwise a clear failure naming them. Never a silent skip.
// Run directly, `node scripts/system-packages.mjs [package…]` does the same for the packages named (all
// of them when none is), e.g. for docs/deploy.md's walk-through.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
const hasPostgres = () => existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));

export const SYSTEM_PACKAGES = [
  { pkg: 'redis-server', present: () => which('redis-server') && which('redis-cli') },
  { pkg: 'postgresql', present: hasPostgres },
  { pkg: 'haproxy', present: () => which('haproxy') || existsSync('/usr/sbin/haproxy') },
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  // libfaketime: a process whose OS clock is off (SECURITY.md F14) without changing the machine's.
  { pkg: 'faketime', present: () => which('faketime') },
];

/**
 * Installs the missing ones of `wanted` (package names of SYSTEM_PACKAGES), or exits naming them.
 * `who` and `command` word the message: what needs them, and what to run again as root.
 */
export function ensureSystemPackages(wanted = SYSTEM_PACKAGES.map((p) => p.pkg), who = 'The tests', command = 'npm test') {
  const unknown = wanted.filter((w) => !SYSTEM_PACKAGES.some((p) => p.pkg === w));
  if (unknown.length) throw new TypeError(`unknown system packages: ${unknown.join(', ')} (known: ${SYSTEM_PACKAGES.map((p) => p.pkg).join(', ')})`);
  const needed = SYSTEM_PACKAGES.filter((p) => wanted.includes(p.pkg));
  const missing = needed.filter((p) => !p.present()).map((p) => p.pkg);
  if (missing.length === 0) return;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !which('apt-get')) {
    console.error(`${who} need these Debian packages, which are missing: ${missing.join(', ')}.\n` +
      `Install them (apt-get install -y ${missing.join(' ')}) or run ${command} as root with apt-get available.`);
    process.exit(1);
  }
  console.log(`# installing missing Debian packages: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  const still = needed.filter((p) => !p.present()).map((p) => p.pkg);
  if (update.status !== 0 || install.status !== 0 || still.length > 0) {
    console.error(`Could not install: ${still.join(', ') || missing.join(', ')}`);
    process.exit(1);
  }
}

/** Whether this file is the script node was started with, rather than a module another one imports. */
const runDirectly = () => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
};

if (runDirectly()) {
  const named = process.argv.slice(2);
  const wanted = named.length > 0 ? named : SYSTEM_PACKAGES.map((p) => p.pkg);
  try {
    ensureSystemPackages(wanted, 'You', `node scripts/system-packages.mjs ${named.join(' ')}`.trimEnd());
  } catch (err) {
    console.error(err instanceof TypeError ? err.message : err);
    process.exit(2);
  }
  console.log(`present: ${wanted.join(', ')}`);
}
