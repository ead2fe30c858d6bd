/**
 * Every README example is a file in examples/ and runs: the README's code blocks must equal those
 * files, and each file is started as a user would start it and driven over HTTP.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { freePort } from '../helpers/net.js';

const readme = readFileSync('README.md', 'utf8');
const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)].map((m) => ({ file: m[1]!, code: m[2]! }));


async function waitFor(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('README examples', () => {
  it('readme when read then shows one example per adapter, each equal to its file in examples/', () => {
    assert.deepEqual(blocks.map((b) => b.file).sort(), ['examples/express-session-compat.ts', 'examples/express.ts', 'examples/fastify.ts', 'examples/hono.ts', 'examples/node-http.ts']);
    for (const b of blocks) assert.equal(b.code, readFileSync(b.file, 'utf8'), `${b.file} differs from its README block`);
  });

  for (const file of ['examples/node-http.ts', 'examples/express.ts', 'examples/fastify.ts', 'examples/hono.ts']) {
    it(`${file} when started then keeps a visit counter per session behind a CSRF token`, async (t) => {
      const port = await freePort();
      const child = spawn(process.execPath, ['--conditions=tether-source', '--import', 'tsx', file], {
        env: { ...process.env, PORT: String(port), NODE_ENV: 'development', NODE_NO_WARNINGS: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      t.after(() => child.kill('SIGKILL'));
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const base = `http://127.0.0.1:${port}`;
      await waitFor(`${base}/api/session`, 20_000).catch((err) => assert.fail(`${file} did not start: ${err}\n${stderr}`));

      const first = await fetch(`${base}/api/session`);
      const { csrfToken, visits } = (await first.json()) as { csrfToken: string; visits: number };
      assert.equal(visits, 0);
      const setCookie = first.headers.get('set-cookie');
      assert.ok(setCookie, 'asking for the CSRF token creates the session');
      assert.match(setCookie, /HttpOnly/);
      const cookie = setCookie.split(';')[0]!;

      const refused = await fetch(`${base}/api/visits`, { method: 'POST', headers: { cookie } });
      assert.equal(refused.status, 403);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'CSRF_TOKEN_INVALID');

      for (let i = 1; i <= 2; i++) {
        const res = await fetch(`${base}/api/visits`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken } });
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as { visits: number }).visits, i);
      }
      const other = await fetch(`${base}/api/session`);
      assert.equal(((await other.json()) as { visits: number }).visits, 0, 'another client has its own session');
    });
  }

  it('examples/express-session-compat.ts when started then counts views per session like express-session', async (t) => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--conditions=tether-source', '--import', 'tsx', 'examples/express-session-compat.ts'], {
      env: { ...process.env, PORT: String(port), NODE_ENV: 'development', NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    const base = `http://127.0.0.1:${port}/`;
    await waitFor(base, 20_000);
    const first = await fetch(base);
    assert.equal(await first.text(), 'views: 1');
    const cookie = first.headers.get('set-cookie')?.split(';')[0];
    assert.ok(cookie);
    const second = await fetch(base, { headers: { cookie } });
    assert.equal(await second.text(), 'views: 2');
    assert.equal(await (await fetch(base)).text(), 'views: 1', 'a client without the cookie starts again');
  });
});
