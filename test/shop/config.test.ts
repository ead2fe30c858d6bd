/** The shop's configuration: defaults, validation errors that name the variable, the development secret. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, SHOP_DEFAULTS } from '../../apps/shop/config.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tether-shop-config-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const quiet = (): void => {};
const SECRET = 'shop-config-test-secret-0123456789abcdef';

describe('shop config', () => {
  it('config when nothing is set then uses the documented defaults with SQLite stores in the data dir', async () => {
    const dir = await tempDir();
    const c = loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET }, quiet);
    assert.equal(c.port, 3000);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.storeUrl, `sqlite:${join(dir, 'sessions.db')}`);
    assert.equal(c.databaseUrl, `sqlite:${join(dir, 'shop.db')}`);
    assert.equal(c.idleTimeoutSec, 1800);
    assert.equal(c.absoluteTimeoutSec, 43_200);
    assert.deepEqual([c.rememberIdleTimeoutSec, c.rememberAbsoluteTimeoutSec], [14 * 86_400, 30 * 86_400]);
    const long = loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET, TETHER_IDLE_TIMEOUT: String(20 * 86_400), TETHER_ABSOLUTE_TIMEOUT: String(40 * 86_400) }, quiet);
    assert.deepEqual([long.rememberIdleTimeoutSec, long.rememberAbsoluteTimeoutSec], [20 * 86_400, 40 * 86_400], 'never shorter than the ordinary timeouts');
    assert.equal(c.workers, 1);
    assert.equal(c.newSessionsPerMinute, SHOP_DEFAULTS.newSessionsPerMinute);
    assert.equal(c.newSessionsPerMinuteTotal, 6_000);
    assert.equal(c.rejectedCookiesPerMinute, 100);
    assert.equal(c.headersTimeoutSec, 20);
    assert.equal(c.requestTimeoutSec, 120);
    assert.equal(SHOP_DEFAULTS.keepAliveTimeoutSec, 5);
    assert.equal(c.production, false);
    assert.deepEqual(c.secrets, [SECRET]);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.loginFailuresPerAccount, 10);
    assert.equal(c.loginFailuresPerAddress, 100);
    assert.equal(c.registrationsPerHour, 20);
    assert.equal(c.maxSessionsPerUser, 20);
    assert.equal(c.maxSessions, 1_000_000);
    assert.deepEqual([c.renewalIntervalSec, c.renewalGraceSec], [900, 30]);
    const off = loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET, TETHER_RENEWAL_INTERVAL: '0' }, quiet);
    assert.deepEqual([off.renewalIntervalSec, off.renewalGraceSec], [0, 0], '0: no renewal');
    const short = loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET, TETHER_RENEWAL_INTERVAL: '20' }, quiet);
    assert.deepEqual([short.renewalIntervalSec, short.renewalGraceSec], [20, 10], 'the grace follows a short interval');
    assert.equal(loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET, SHOP_MAX_SESSIONS: '0' }, quiet).maxSessions, 0, '0: no cap');
    assert.equal(loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET, TETHER_MAX_SESSIONS_PER_USER: '0' }, quiet).maxSessionsPerUser, 0, '0: no limit');
    assert.equal(loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET, SHOP_LOG_LEVEL: 'DEBUG' }, quiet).logLevel, 'debug');
  });

  it('config TETHER_DATA_KEY when given then its keys are taken, each checked as production checks a secret; unset, none', async () => {
    const dir = await tempDir();
    assert.deepEqual(loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET }, quiet).dataKeys, []);
    const keys = ['data-key-one-0123456789abcdefghijklmn', 'data-key-two-0123456789abcdefghijklmn'];
    assert.deepEqual(loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET, TETHER_DATA_KEY: keys.join(', ') }, quiet).dataKeys, keys);
    for (const [value, message] of [
      [' , ', /holds no key/],
      ['x'.repeat(40), /different characters/],
      ['short-key', /at least 32 characters/],
      [SECRET, /must not repeat a signing secret/],
    ] as const) {
      assert.throws(() => loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: SECRET, TETHER_DATA_KEY: value }, quiet), (err: Error) => /TETHER_DATA_KEY/.test(err.message) && message.test(err.message), value);
    }
  });

  it('config when a variable is invalid then throws ConfigError naming it', async () => {
    const dir = await tempDir();
    const cases: Array<[string, string]> = [
      ['PORT', 'eighty'], ['PORT', '70000'], ['TETHER_IDLE_TIMEOUT', '-5'], ['TETHER_ABSOLUTE_TIMEOUT', '1.5'], ['TETHER_WORKERS', '0'],
      ['SHOP_NEW_SESSIONS_PER_MINUTE', 'lots'], ['SHOP_NEW_SESSIONS_PER_MINUTE_TOTAL', '0'], ['SHOP_REJECTED_COOKIES_PER_MINUTE', '-1'],
      ['SHOP_HEADERS_TIMEOUT', '0'], ['SHOP_HEADERS_TIMEOUT', '2.5'], ['SHOP_HEADERS_TIMEOUT', 'soon'], ['SHOP_HEADERS_TIMEOUT', '3601'],
      ['SHOP_REQUEST_TIMEOUT', '0'], ['SHOP_REQUEST_TIMEOUT', '-1'], ['SHOP_REQUEST_TIMEOUT', '86401'], ['TETHER_STORE', 'mongo://x'], ['TETHER_STORE', 'redis://127.0.0.1?cache=lazy'], ['SHOP_DATABASE_URL', 'mysql://x'],
      ['TETHER_SECRET', 'short'], ['TETHER_SECRET', `${SECRET},short`], ['SHOP_ADMIN_PASSWORD', 'short'], ['SHOP_PUBLIC_ORIGIN', 'not a url'],
      ['SHOP_LOG_LEVEL', 'verbose'], ['SHOP_LOG_LEVEL', 'info,debug'], ['SHOP_LOGIN_FAILURES_PER_ACCOUNT', '0'], ['SHOP_LOGIN_FAILURES_PER_ADDRESS', 'many'], ['SHOP_REGISTRATIONS_PER_HOUR', '0'], ['SHOP_PASSWORD_CHECKS_PER_MINUTE', '0'],
      ['TETHER_REMEMBER_IDLE_TIMEOUT', '60'], ['TETHER_REMEMBER_ABSOLUTE_TIMEOUT', '3600'], ['TETHER_REMEMBER_IDLE_TIMEOUT', 'weeks'],
      ['TETHER_MAX_SESSIONS_PER_USER', '-1'], ['TETHER_MAX_SESSIONS_PER_USER', 'few'], ['SHOP_MAX_SESSIONS', '-1'], ['SHOP_MAX_SESSIONS', 'all'],
      ['TETHER_RENEWAL_INTERVAL', '-1'], ['TETHER_RENEWAL_INTERVAL', 'hourly'], ['TETHER_RENEWAL_GRACE', '61'], ['TETHER_RENEWAL_GRACE', '900'],
      ['TETHER_NODE_NAME', 'nœud-1'], ['TETHER_NODE_NAME', 'a\tb'],
    ];
    for (const [name, value] of cases) {
      assert.throws(() => loadConfig({ TETHER_SECRET: SECRET, TETHER_DATA_DIR: dir, [name]: value }, quiet), (err: unknown) => {
        assert.ok(err instanceof ConfigError, `${name}=${value}`);
        assert.equal(err.variable, name);
        assert.ok(err.message.startsWith(`${name}: `));
        return true;
      });
    }
  });

  it('config when slow-client deadlines are set then reads them, and refuses a request deadline shorter than the head deadline naming SHOP_REQUEST_TIMEOUT', async () => {
    const dir = await tempDir();
    const c = loadConfig({ TETHER_SECRET: SECRET, TETHER_DATA_DIR: dir, SHOP_HEADERS_TIMEOUT: '2', SHOP_REQUEST_TIMEOUT: ' 3 ' }, quiet);
    assert.equal(c.headersTimeoutSec, 2);
    assert.equal(c.requestTimeoutSec, 3);
    assert.equal(loadConfig({ TETHER_SECRET: SECRET, TETHER_DATA_DIR: dir, SHOP_HEADERS_TIMEOUT: '7', SHOP_REQUEST_TIMEOUT: '7' }, quiet).requestTimeoutSec, 7);
    for (const env of [{ SHOP_HEADERS_TIMEOUT: '30', SHOP_REQUEST_TIMEOUT: '10' }, { SHOP_HEADERS_TIMEOUT: '200' }, { SHOP_REQUEST_TIMEOUT: '19' }]) {
      assert.throws(() => loadConfig({ TETHER_SECRET: SECRET, TETHER_DATA_DIR: dir, ...env }, quiet), (err: unknown) => {
        assert.ok(err instanceof ConfigError, JSON.stringify(env));
        assert.equal(err.variable, 'SHOP_REQUEST_TIMEOUT');
        assert.match(err.message, /^SHOP_REQUEST_TIMEOUT: must be at least SHOP_HEADERS_TIMEOUT/);
        return true;
      });
    }
  });

  it('config when several workers would each hold their own in-memory store then throws naming TETHER_WORKERS', async () => {
    const dir = await tempDir();
    for (const env of [{ TETHER_STORE: 'memory' }, { TETHER_STORE: 'sqlite::memory:' }, { SHOP_DATABASE_URL: 'sqlite::memory:' }]) {
      assert.throws(() => loadConfig({ TETHER_SECRET: SECRET, TETHER_DATA_DIR: dir, TETHER_WORKERS: '2', ...env }, quiet),
        { name: 'ConfigError', message: /^TETHER_WORKERS: 2 workers cannot share .* which lives inside each process/ }, JSON.stringify(env));
      assert.equal(loadConfig({ TETHER_SECRET: SECRET, TETHER_DATA_DIR: dir, TETHER_WORKERS: '1', ...env }, quiet).workers, 1);
    }
    assert.equal(loadConfig({ TETHER_SECRET: SECRET, TETHER_DATA_DIR: dir, TETHER_WORKERS: '2', TETHER_STORE: `sqlite:${join(dir, 's.db')}` }, quiet).workers, 2);
  });

  it('config when NODE_ENV=production without TETHER_SECRET then throws naming TETHER_SECRET', async () => {
    assert.throws(() => loadConfig({ NODE_ENV: 'production', TETHER_DATA_DIR: 'unused' }, quiet), { name: 'ConfigError', message: /^TETHER_SECRET: is required/ });
  });

  it('config when NODE_ENV=production and a TETHER_SECRET is a repeated character or word then throws naming TETHER_SECRET, never quoting it', async () => {
    // Accepted in development, the config makes its data dir: a temporary one, not a folder of the checkout.
    const dir = await tempDir();
    for (const weak of ['t'.repeat(32), 'changeme'.repeat(4)]) {
      assert.throws(() => loadConfig({ NODE_ENV: 'production', TETHER_DATA_DIR: 'unused', TETHER_SECRET: `${SECRET},${weak}` }, quiet), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.variable, 'TETHER_SECRET');
        assert.match(err.message, /different characters is a repeated pattern/);
        assert.ok(!err.message.includes(weak.slice(0, 8)));
        return true;
      });
      assert.deepEqual(loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: weak }, quiet).secrets, [weak], 'accepted in development');
    }
  });

  it('config when TETHER_SECRET is unset in development then generates one, keeps it 0600 in the data dir and reuses it', async () => {
    const dir = await tempDir();
    const lines: string[] = [];
    const first = loadConfig({ TETHER_DATA_DIR: join(dir, 'nested') }, (l) => lines.push(l));
    assert.equal(first.secretGenerated, true);
    assert.match(lines[0]!, /warning: TETHER_SECRET is not set/);
    const file = join(dir, 'nested', 'secret');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await readFile(file, 'utf8')).trim(), first.secrets[0]);
    const second = loadConfig({ TETHER_DATA_DIR: join(dir, 'nested') }, quiet);
    assert.deepEqual(second.secrets, first.secrets);
  });

  it('config when several secrets and a public origin are given then keeps them in order and normalises the origin', async () => {
    const dir = await tempDir();
    const older = 'older-secret-kept-for-rotation-0123456789';
    const c = loadConfig({ TETHER_DATA_DIR: dir, TETHER_SECRET: ` ${SECRET} , ${older}`, SHOP_PUBLIC_ORIGIN: 'https://Shop.Example/path', NODE_ENV: 'production' }, quiet);
    assert.deepEqual(c.secrets, [SECRET, older]);
    assert.equal(c.publicOrigin, 'https://shop.example');
    assert.equal(c.production, true);
  });
});
