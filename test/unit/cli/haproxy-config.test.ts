/**
 * `tether haproxy-config`: the generated configuration says what deploy.md promises (persistence,
 * redispatch, conn-failure retries only, health checks, timeouts), real haproxy accepts it, and bad
 * arguments fail with a clear message and exit code 2: among them values HAProxy would refuse or
 * silently change (quotes in the health path, times past its timer limit), repeated options, the same
 * node spelled twice, and the session cookie's own name as HAProxy's cookie.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runCli as run } from '../../helpers/cli.js';
import { haproxyConfig } from '../../../src/cluster/haproxy.js';
import { REPO_ROOT } from '../../helpers/node-process.js';
import { freePort } from '../../helpers/net.js';

const NODES = '127.0.0.1:3001,127.0.0.1:3002,127.0.0.1:3003';
const dir = mkdtempSync(path.join(os.tmpdir(), 'tether-haproxy-cfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function haproxyCheck(text: string): { status: number | null; output: string } {
  const file = path.join(dir, `h${Math.random().toString(36).slice(2)}.cfg`);
  writeFileSync(file, text);
  const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  if (r.error) throw new Error(`haproxy is not installed (Debian: apt-get install haproxy, or node scripts/system-packages.mjs as root): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('tether haproxy-config', () => {
  it('haproxy-config when given listen and three nodes then it prints the persistence, retry and health settings', async () => {
    const { code, out } = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES]);
    assert.equal(code, 0);
    const lines = out.split('\n').map((l) => l.trim());
    for (const want of [
      'bind 127.0.0.1:8080',
      'balance roundrobin',
      'cookie SRV insert indirect nocache httponly',
      'option redispatch',
      'retries 3',
      'retry-on conn-failure',
      'option httpchk GET /healthz',
      'http-check expect status 200',
      'default-server inter 2s fastinter 500ms fall 3 rise 2',
      'timeout http-request 10s',
      'timeout http-keep-alive 5s',
      'timeout connect 5s',
      'timeout client 30s',
      'timeout server 30s',
      'timeout tunnel 1h',
      'server node1 127.0.0.1:3001 check cookie node1',
      'server node2 127.0.0.1:3002 check cookie node2',
      'server node3 127.0.0.1:3003 check cookie node3',
    ]) assert.ok(lines.includes(want), `missing line: ${want}`);
    assert.equal(lines.filter((l) => l.startsWith('retry-on')).length, 1);
    assert.ok(!/listen stats/.test(out), 'no stats page unless asked');
  });

  it('haproxy-config when given --stats and check timings then they appear', async () => {
    const { code, out } = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--stats', '127.0.0.1:8404',
      '--check-inter', '500ms', '--check-fastinter', '100ms', '--fall', '2', '--rise', '1']);
    assert.equal(code, 0);
    assert.match(out, /listen stats\n {4}bind 127\.0\.0\.1:8404\n {4}stats enable/);
    assert.match(out, /default-server inter 500ms fastinter 100ms fall 2 rise 1/);
  });

  it('haproxy-config when the output is checked by haproxy -c then it is valid', async () => {
    const plain = haproxyCheck((await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES])).out);
    assert.equal(plain.status, 0, plain.output);
    const stats = haproxyCheck((await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--stats', '127.0.0.1:8404'])).out);
    assert.equal(stats.status, 0, stats.output);
    const v6 = haproxyCheck(haproxyConfig({ listen: '[::1]:8080', nodes: ['[::1]:3001', 'localhost:3002'] }));
    assert.equal(v6.status, 0, v6.output);
  });

  it('haproxy-config when arguments are missing or malformed then it exits 2 naming the argument', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['haproxy-config', '--nodes', NODES], /--listen <host:port> is required/],
      [['haproxy-config', '--listen', '127.0.0.1:8080'], /--nodes <host:port,...> is required/],
      [['haproxy-config', '--listen', '127.0.0.1', '--nodes', NODES], /--listen "127\.0\.0\.1" needs a port/],
      [['haproxy-config', '--listen', '127.0.0.1:99999', '--nodes', NODES], /port between 1 and 65535/],
      [['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', '127.0.0.1:3001,'], /empty entry/],
      [['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', '127.0.0.1:3001,127.0.0.1:3001'], /lists 127\.0\.0\.1:3001 twice/],
      [['haproxy-config', '--listen', '127.0.0.1:3001', '--nodes', NODES], /also one of --nodes/],
      [['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', 'bad host:1'], /--nodes entry 1 "bad host:1" has no valid host/],
      [['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--check-inter', 'soon'], /--check-inter must be a duration/],
      [['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--fall', '0'], /--fall must be a whole number/],
      [['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--cookie', 'a b'], /--cookie must be/],
      [['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--bogus'], /Unknown option '--bogus'/],
      [['haproxy-config', 'extra', '--listen', '127.0.0.1:8080', '--nodes', NODES], /unexpected argument "extra"/],
      [['no-such-command'], /unknown command "no-such-command"/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.out, '');
      assert.match(r.err, re, argv.join(' '));
    }
  });

  it('haproxy-config when the health path holds characters HAProxy\'s parser reads as syntax then it exits 2, and the other URL characters reach the nodes\' checks unchanged', async () => {
    for (const bad of ["/a'b", "/a'b'", '/a"b"', '/a\\x41', '/a#b', '/a b', '/a\tb']) {
      const r = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--health-path', bad]);
      assert.equal(r.code, 2, bad);
      assert.equal(r.out, '', bad);
      assert.match(r.err, /--health-path .* without spaces, quotes, backslashes or "#"/, bad);
    }
    // The other URL characters stay accepted, and reach the nodes exactly as given.
    const healthPath = "/h/a$b;c=d&e(f)*g!h:i@j,k+l~m%20n.o_p-q";
    const { code, out } = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--health-path', healthPath]);
    assert.equal(code, 0);
    const checked = haproxyCheck(out);
    assert.equal(checked.status, 0, checked.output);
    // A node that records the paths HAProxy's health checks ask for.
    const asked: string[] = [];
    const node = http.createServer((req, res) => {
      asked.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
    const listen = `127.0.0.1:${await freePort()}`;
    const file = path.join(dir, 'live.cfg');
    writeFileSync(file, haproxyConfig({ listen, nodes: [`127.0.0.1:${(node.address() as AddressInfo).port}`], healthPath, checkInterMs: 100 }));
    const haproxy = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    haproxy.stdout.on('data', (c: Buffer) => { log += c.toString(); });
    haproxy.stderr.on('data', (c: Buffer) => { log += c.toString(); });
    const exited = new Promise((r) => haproxy.once('exit', r));
    try {
      for (let i = 0; i < 100 && asked.length === 0 && haproxy.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(asked.length > 0, `HAProxy sent no health check\n${log}`);
      assert.deepEqual([...new Set(asked)], [healthPath]);
    } finally {
      if (haproxy.exitCode === null) process.kill(haproxy.pid!, 'SIGKILL');
      await exited;
      await new Promise((r) => node.close(r));
    }
  });

  it('haproxy-config when a check time is past HAProxy\'s timer limit then the CLI exits 2 and the library refuses it', async () => {
    for (const [flag, value] of [['--check-inter', '2147484s'], ['--check-inter', '2147483648ms'], ['--check-fastinter', '2147483648']]) {
      const r = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, flag!, value!]);
      assert.equal(r.code, 2, `${flag} ${value}`);
      assert.equal(r.out, '');
      assert.match(r.err, new RegExp(`${flag} must be at most 2147483647ms`), `${flag} ${value}`);
    }
    for (const options of [{ checkInterMs: 2 ** 31 }, { checkFastInterMs: 2 ** 31 }, { fall: 1001 }, { rise: 2 ** 32 + 1 }, { maxconn: 2 ** 31 }]) {
      assert.throws(() => haproxyConfig({ listen: '127.0.0.1:8080', nodes: ['127.0.0.1:3001'], ...options }),
        (err: Error & { code?: string }) => err.code === 'OPTIONS_INVALID' && /at most/.test(err.message), JSON.stringify(options));
    }
    const longest = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--check-inter', '2147483647ms', '--check-fastinter', '2147483s']);
    assert.equal(longest.code, 0, longest.err);
    const checked = haproxyCheck(longest.out);
    assert.equal(checked.status, 0, checked.output);
  });

  it('haproxy-config when --nodes is repeated then every node is balanced to, and HAProxy accepts the config', async () => {
    const { code, out, err } = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', '127.0.0.1:3001,127.0.0.1:3002', '--nodes', '127.0.0.1:3003']);
    assert.equal(code, 0, err);
    const servers = out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('server '));
    assert.deepEqual(servers, [
      'server node1 127.0.0.1:3001 check cookie node1',
      'server node2 127.0.0.1:3002 check cookie node2',
      'server node3 127.0.0.1:3003 check cookie node3',
    ]);
    const checked = haproxyCheck(out);
    assert.equal(checked.status, 0, checked.output);
  });

  it('haproxy-config when a single-valued option is repeated then it exits 2 naming it instead of keeping the last', async () => {
    const base = ['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES];
    for (const [flag, a, b] of [
      ['--listen', '127.0.0.1:8081', '127.0.0.1:8082'], ['--stats', '127.0.0.1:8404', '127.0.0.1:8405'], ['--cookie', 'SRV', 'NODE'],
      ['--health-path', '/healthz', '/ready'], ['--check-inter', '1s', '2s'], ['--check-fastinter', '1s', '2s'], ['--fall', '2', '3'], ['--rise', '2', '3'],
    ]) {
      const argv = flag === '--listen' ? ['haproxy-config', '--listen', a!, '--nodes', NODES, `${flag}=${b}`] : [...base, flag!, a!, flag!, b!];
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.out, '');
      assert.match(r.err, new RegExp(`${flag} is given more than once`), argv.join(' '));
    }
    const sessions = await run(['sessions', 'count', '--store', 'sqlite:a.db', '--store', 'sqlite:b.db']);
    assert.equal(sessions.code, 2);
    assert.match(sessions.err, /--store is given more than once/);
  });

  it('haproxy-config when one node is listed twice in another spelling then it exits 2 naming both', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--nodes', '127.0.0.1:3001,127.0.0.1:03001'], /--nodes lists 127\.0\.0\.1:3001 twice \(also as 127\.0\.0\.1:03001\)/],
      [['--nodes', '127.0.0.1:3001', '--nodes', '127.0.0.1:3001'], /--nodes lists 127\.0\.0\.1:3001 twice/],
      [['--nodes', 'node-a.example:3001,NODE-A.example:3001'], /--nodes lists node-a\.example:3001 twice \(also as NODE-A\.example:3001\)/],
      [['--nodes', '[::1]:3001,[0:0:0:0:0:0:0:1]:3001'], /--nodes lists \[::1\]:3001 twice/],
      [['--nodes', '127.0.0.1:08080'], /--listen 127\.0\.0\.1:8080 is also one of --nodes/],
      [['--nodes', NODES, '--stats', '127.0.0.1:03001'], /--stats 127\.0\.0\.1:03001 is already used/],
      // Another name of the address HAProxy listens on, or a wildcard bind that covers a loopback node: it would proxy to itself.
      [['--nodes', 'localhost:8080'], /--listen 127\.0\.0\.1:8080 is also one of --nodes \(as localhost:8080\)/],
      [['--nodes', NODES, '--stats', 'localhost:8080'], /--stats localhost:8080 is already used/],
      [['--nodes', NODES, '--stats', '0.0.0.0:8080'], /--stats 0\.0\.0\.0:8080 is already used/],
    ];
    for (const [extra, re] of cases) {
      const argv = ['haproxy-config', '--listen', '127.0.0.1:8080', ...extra];
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.out, '');
      assert.match(r.err, re, argv.join(' '));
    }
    for (const listen of ['0.0.0.0:8080', '[::]:8080']) {
      const self = await run(['haproxy-config', '--listen', listen, '--nodes', '127.0.0.1:8080']);
      assert.match(self.err, /is also one of --nodes/, listen);
      const elsewhere = await run(['haproxy-config', '--listen', listen, '--nodes', '10.0.0.5:8080,10.0.0.6:8080']);
      assert.equal(elsewhere.code, 0, `${listen}: nodes on other machines, on the port it listens on`);
    }
  });

  it('haproxy-config when a host looks like an IP address but is not one then it exits 2 naming it, rather than print a config HAProxy refuses', async () => {
    for (const node of ['999.999.999.999:3001', '1.2.3:3001', '[1:2:3:4:5:6:7:8:9]:3001', '[:]:3001', '[.]:3001']) {
      const r = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', node]);
      assert.equal(r.code, 2, node);
      assert.match(r.err, /--nodes entry 1 ".*" (is not a valid IP address|has no valid host)/, node);
    }
  });

  it('haproxy-config when --cookie names Tether\'s session cookie then it exits 2, since HAProxy would strip that cookie from every request', async () => {
    for (const name of ['sid', '__Host-sid']) {
      const r = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--cookie', name]);
      assert.equal(r.code, 2, name);
      assert.equal(r.out, '');
      assert.match(r.err, new RegExp(`--cookie ${name} is the name of Tether's session cookie`), name);
    }
    const help = await run(['haproxy-config', '--help']);
    assert.match(help.out, /--cookie <name> .*must differ from the\s+app's session cookie \(sid, or __Host-sid when Secure\)/);
    const other = await run(['haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES, '--cookie', 'NODE']);
    assert.equal(other.code, 0, other.err);
    const checked = haproxyCheck(other.out);
    assert.equal(checked.status, 0, checked.output);
  });

  it('haproxy-config when run through bin/tether.js then it prints the config and exits 0', () => {
    const out = execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin/tether.js'), 'haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES], { encoding: 'utf8' });
    assert.match(out, /cookie SRV insert indirect nocache httponly/);
    const bad = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/tether.js'), 'haproxy-config'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--listen <host:port> is required/);
  });
});
