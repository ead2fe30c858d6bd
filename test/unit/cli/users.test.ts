/**
 * `tether users`: an operator shows a user's context (a request for their data) or clears it (its
 * erasure) in the store an app shares, a real SQLite file here, encrypted or not; an engine on that
 * store sees the result, the user's sessions stay, and bad arguments exit 2 with a clear message.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { runCli as run } from '../../helpers/cli.js';
import { createTether, encryptedCodec } from '../../../src/index.js';
import type { SessionCodec } from '../../../src/index.js';
import { SqliteStore } from '../../../src/stores/sqlite/index.js';
import { SECRET_A } from '../support.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tether-cli-users-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A store file where `ada` has a user context and a signed-in session, written by an engine with `codec`. */
async function seeded(codec?: SessionCodec): Promise<{ url: string; file: string }> {
  const file = path.join(dir, `u${Math.random().toString(36).slice(2)}.db`);
  const tether = createTether({ secrets: [SECRET_A], store: new SqliteStore({ path: file }), ...(codec ? { codec } : {}) });
  try {
    await tether.users.update('ada', () => ({ saved: ['tea', 'jam'], preferences: { theme: 'dark' } }));
    const session = await tether.open({ method: 'GET', header: () => undefined });
    session.login('ada');
    await tether.commit(session);
  } finally {
    await tether.close();
  }
  return { url: `sqlite:${file}`, file };
}

describe('tether users', () => {
  it('users show when the user has a context then prints it as JSON with when it was written and expires; --json gives one object; none prints so', async () => {
    const { url } = await seeded();
    const r = await run(['users', 'show', 'ada', '--store', url]);
    assert.equal(r.code, 0, r.err);
    const [head, ...body] = r.out.trimEnd().split('\n');
    assert.match(head!, /^user context of ada: last written \d{4}-\d\d-\d\dT[\d:.]+Z, expires \d{4}-\d\d-\d\dT[\d:.]+Z$/);
    assert.deepEqual(JSON.parse(body.join('\n')), { saved: ['tea', 'jam'], preferences: { theme: 'dark' } });

    const j = await run(['users', 'show', 'ada', '--json'], { TETHER_STORE: url });
    const parsed = JSON.parse(j.out) as { userId: string; lastWrittenAt: string; expiresAt: string; context: unknown };
    assert.equal(parsed.userId, 'ada');
    assert.deepEqual(parsed.context, { saved: ['tea', 'jam'], preferences: { theme: 'dark' } });
    assert.ok(Date.parse(parsed.expiresAt) - Date.parse(parsed.lastWrittenAt) > 80 * 86_400_000, 'the 90-day lifetime of a user context');

    assert.deepEqual(await run(['users', 'show', 'bob', '--store', url]), { code: 0, out: 'bob has no user context\n', err: '' });
    assert.equal((await run(['users', 'show', 'bob', '--json', '--store', url])).out, '{"userId":"bob","context":null}\n');
  });

  it('users show when the context holds control characters a user typed then it prints them as JSON escapes, never as they are', async () => {
    const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.db`);
    const tether = createTether({ secrets: [SECRET_A], store: new SqliteStore({ path: file }) });
    const name = 'Eve\u009b2J\u009d0;title\u009c';
    try {
      await tether.users.update('eve', () => ({ shipping: { name } }));
    } finally {
      await tether.close();
    }
    for (const args of [['users', 'show', 'eve'], ['users', 'show', 'eve', '--json']]) {
      const r = await run([...args, '--store', `sqlite:${file}`]);
      assert.equal(r.code, 0, r.err);
      assert.ok(!/[\u007f-\u009f]/.test(r.out), JSON.stringify(r.out));
      const json = args.length === 4 ? (JSON.parse(r.out) as { context: unknown }).context : JSON.parse(r.out.slice(r.out.indexOf('\n') + 1));
      assert.deepEqual(json, { shipping: { name } }, 'the JSON still reads as the same text');
    }
  });

  it('users clear when run then an engine on the store reads an empty context, and the user\'s sessions stay', async () => {
    const { url, file } = await seeded();
    const r = await run(['users', 'clear', 'ada', '--store', url]);
    assert.deepEqual(r, { code: 0, out: 'cleared the user context of ada\n', err: '' });
    const tether = createTether({ secrets: [SECRET_A], store: new SqliteStore({ path: file }) });
    try {
      assert.deepEqual(await tether.users.get('ada'), {});
      assert.equal((await tether.listUserSessions('ada')).length, 1, 'the session stays');
    } finally {
      await tether.close();
    }
    assert.equal((await run(['users', 'clear', 'ada', '--store', url])).out, 'ada has no user context\n');
  });

  it('users show when the app encrypts its data then reads it with TETHER_DATA_KEY, and without the key exits 1 naming the variable, never printing the record', async () => {
    const key = randomBytes(32).toString('base64url');
    const { url } = await seeded(encryptedCodec({ keys: key }));
    const r = await run(['users', 'show', 'ada', '--json', '--store', url], { TETHER_DATA_KEY: key });
    assert.equal(r.code, 0, r.err);
    assert.deepEqual((JSON.parse(r.out) as { context: unknown }).context, { saved: ['tea', 'jam'], preferences: { theme: 'dark' } });
    const without = await run(['users', 'show', 'ada', '--store', url]);
    assert.deepEqual(without, { code: 1, out: '', err: 'tether users: the user context of ada could not be read (if the app encrypts its data, set TETHER_DATA_KEY to its keys)\n' });
    const wrong = await run(['users', 'show', 'ada', '--store', url], { TETHER_DATA_KEY: randomBytes(32).toString('base64url') });
    assert.deepEqual(wrong, { code: 1, out: '', err: 'tether users: the user context of ada could not be read with the keys of TETHER_DATA_KEY\n' });
  });

  it('users when given bad arguments then exits 2 with a message naming the problem, and opens no store', async () => {
    const { url } = await seeded();
    for (const [argv, message] of [
      [['users'], /users needs show or clear \(got nothing\)/],
      [['users', 'list', 'ada'], /users needs show or clear \(got "list"\)/],
      [['users', 'show'], /users show needs a user ID/],
      [['users', 'show', 'ada', 'bob'], /unexpected argument "bob"/],
      [['users', 'clear', 'ada', '--json', '--store', url], /--json goes with users show/],
      [['users', 'show', 'ada'], /no store: pass --store <url> or set TETHER_STORE/],
      [['users', 'show', 'ada', '--store', 'memory:'], /a memory store lives inside the app's process/],
      [['users', 'show', 'ada', '--store', url, '--store', url], /--store/],
      [['users', 'show', 'x'.repeat(1025), '--store', url], /user ID/i],
    ] as Array<[string[], RegExp]>) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, message, argv.join(' '));
      assert.equal(r.out, '');
    }
  });
});
