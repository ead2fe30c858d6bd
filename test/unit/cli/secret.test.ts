/**
 * `tether secret`: prints a secret production accepts, different each time; `--check` judges
 * TETHER_SECRET as production would, naming positions and lengths, never a secret.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { runCli as run } from '../../helpers/cli.js';
import { createTether } from '../../../src/core/engine.js';
import { REPO_ROOT } from '../../helpers/node-process.js';

describe('tether secret', () => {
  it('secret when run then prints 43 base64url characters that production accepts, new each time', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { code, out, err } = await run(['secret']);
      assert.equal(code, 0);
      assert.equal(err, '');
      assert.match(out, /^[A-Za-z0-9_-]{43}\n$/);
      seen.add(out.trim());
    }
    assert.equal(seen.size, 20);
    const tether = createTether({ production: true, secrets: [...seen] });
    assert.equal(tether.options.secrets.length, 20);
  });

  it('secret --check when TETHER_SECRET holds a refused secret then exits 1 naming its position, and prints no secret', async () => {
    const good = (await run(['secret'])).out.trim();
    const repeated = 'changeme'.repeat(4);
    const short = 'tooShortButRandom-4f9a';
    const r = await run(['secret', '--check'], { TETHER_SECRET: `${good},${repeated},${short}` });
    assert.equal(r.code, 1);
    assert.match(r.out, /^secret 1 of 3 \(signs\), 43 characters: ok\n$/);
    assert.match(r.err, /secret 2 of 3 \(verifies\), 32 characters: a secret with 7 different characters is a repeated pattern/);
    assert.match(r.err, /secret 3 of 3 \(verifies\), 22 characters: every secret must be at least 32 characters/);
    for (const secret of [good, repeated, short]) assert.equal(`${r.out}${r.err}`.includes(secret), false, 'a secret was printed');
    const ok = await run(['secret', '--check'], { TETHER_SECRET: good });
    assert.equal(ok.code, 0);
  });

  it('secret --check when TETHER_DATA_KEY is set then its keys are judged too, and one that repeats a signing secret is refused', async () => {
    const [secret, key] = [(await run(['secret'])).out.trim(), (await run(['secret'])).out.trim()];
    const ok = await run(['secret', '--check'], { TETHER_SECRET: secret, TETHER_DATA_KEY: key });
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.out, 'secret 1 of 1 (signs), 43 characters: ok\ndata key 1 of 1 (encrypts), 43 characters: ok\n');
    const same = await run(['secret', '--check'], { TETHER_SECRET: secret, TETHER_DATA_KEY: `${key},${secret}` });
    assert.equal(same.code, 1);
    assert.match(same.err, /^data key 2 of 2 \(decrypts\), 43 characters: the same as a signing secret/);
    const alone = await run(['secret', '--check'], { TETHER_DATA_KEY: 'x'.repeat(40) });
    assert.equal(alone.code, 1);
    assert.match(alone.err, /data key 1 of 1 \(encrypts\), 40 characters: a secret with 1 different characters/);
    for (const r of [ok, same, alone]) for (const text of [secret, key]) assert.equal(`${r.out}${r.err}`.includes(text), false, 'a key was printed');
  });

  it('secret when misused then exits 2 with the reason: a secret as an argument, --check without TETHER_SECRET', async () => {
    const arg = await run(['secret', 'my-secret-value-that-would-stay-in-history']);
    assert.equal(arg.code, 2);
    assert.match(arg.err, /secret takes no argument/);
    assert.equal(arg.err.includes('my-secret-value'), false);
    const unset = await run(['secret', '--check'], {});
    assert.equal(unset.code, 2);
    assert.match(unset.err, /reads TETHER_SECRET and TETHER_DATA_KEY, and neither is set/);
  });

  it('secret when run through bin/tether.js then prints one and exits 0', () => {
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/tether.js'), 'secret'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^[A-Za-z0-9_-]{43}\n$/);
  });
});
