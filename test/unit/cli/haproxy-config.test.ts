/**
 * `tether haproxy-config`: the generated configuration says what deploy.md promises (persistence,
 * redispatch, conn-failure retries only, health checks, timeouts), real haproxy accepts it, and bad
 * arguments fail with a clear message and exit code 2.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../../src/cli/index.js';
import { haproxyConfig } from '../../../src/cluster/haproxy.js';
import { REPO_ROOT } from '../../helpers/node-process.js';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

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
      'timeout connect 5s',
      'timeout client 30s',
      'timeout server 30s',
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

  it('haproxy-config when run through bin/tether.js then it prints the config and exits 0', () => {
    const out = execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin/tether.js'), 'haproxy-config', '--listen', '127.0.0.1:8080', '--nodes', NODES], { encoding: 'utf8' });
    assert.match(out, /cookie SRV insert indirect nocache httponly/);
    const bad = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/tether.js'), 'haproxy-config'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--listen <host:port> is required/);
  });
});
