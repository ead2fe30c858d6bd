/**
 * Tracing channels: each request's open and commit, and every store call under them, over HTTP with a
 * real SQLite file; the store call's span is the child of the open or commit it serves (the context an
 * APM carries in AsyncLocalStorage), and no context carries the session's ID, cookie or data.
 */
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { tetherPlugin } from '../../../src/adapters/fastify/index.js';
import { Tether } from '../../../src/core/engine.js';
import { SqliteStore } from '../../../src/stores/sqlite/index.js';
import { TRACING_CHANNEL_NAMES } from '../../../src/observability/tracing.js';
import { TRACING_CHANNEL_NAMES as FROM_PACKAGE } from '../../../src/observability/index.js';
import { FaultyStore, SECRET_A, view } from '../support.js';
import { tempSqliteFile } from '../../helpers/sqlite.js';
import type { TempSqliteFile } from '../../helpers/sqlite.js';

type Name = keyof typeof TRACING_CHANNEL_NAMES;

interface Span {
  name: Name;
  context: Record<string, unknown>;
  parent: Span | undefined;
  ended: boolean;
  events: string[];
}

/** Records every span as an APM would: its parent from the AsyncLocalStorage its start channel binds. */
function record(): { spans: Span[]; stop: () => void } {
  const als = new AsyncLocalStorage<Span>();
  const spans: Span[] = [];
  const stops: Array<() => void> = [];
  for (const name of Object.keys(TRACING_CHANNEL_NAMES) as Name[]) {
    const channel = diagnostics.tracingChannel<Span, Record<string, unknown>>(TRACING_CHANNEL_NAMES[name]);
    const byContext = new Map<object, Span>();
    channel.start.bindStore(als, (context) => {
      const span: Span = { name, context, parent: als.getStore(), ended: false, events: ['start'] };
      byContext.set(context, span);
      spans.push(span);
      return span;
    });
    const on = (event: string) => (context: unknown): void => {
      const span = byContext.get(context as object)!;
      span.events.push(event);
      if (event === 'asyncEnd') span.ended = true;
    };
    const handlers = { start: () => {}, end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') };
    channel.subscribe(handlers);
    stops.push(() => {
      channel.unsubscribe(handlers);
      channel.start.unbindStore(als);
    });
  }
  return { spans, stop: () => stops.forEach((s) => s()) };
}

describe('tracing channels', () => {
  let file: TempSqliteFile;
  let store: FaultyStore;
  let tether: Tether<{ n?: number; note?: string }>;
  let app: FastifyInstance;
  let base: string;
  let recording: { spans: Span[]; stop: () => void } | undefined;

  before(async () => {
    file = await tempSqliteFile();
    store = new FaultyStore(new SqliteStore({ path: file.path }));
    tether = new Tether({ secrets: [SECRET_A], store, csrf: false, storeTimeoutMs: 300 });
    app = Fastify();
    await app.register(tetherPlugin, { tether: tether as unknown as Tether<object> });
    app.post('/note', async (req) => {
      const s = req.session;
      s.set('n', Number(s.get('n') ?? 0) + 1);
      s.set('note', 'private-note-7f3a');
      return { n: s.get('n') };
    });
    app.get('/read', async (req) => ({ n: req.session.get('n') ?? null }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  });

  after(async () => {
    await app.close();
    await tether.close();
    await file.remove();
  });

  afterEach(() => {
    recording?.stop();
    recording = undefined;
    store.heal();
  });

  it('names when listed then follow tether:<area>:<what>, and tether/observability exports them', () => {
    assert.deepEqual(TRACING_CHANNEL_NAMES, { open: 'tether:session:open', commit: 'tether:session:commit', store: 'tether:store:call' });
    assert.equal(FROM_PACKAGE, TRACING_CHANNEL_NAMES);
  });

  it('requests when traced then each open and commit is a span, with its store calls as children', async () => {
    recording = record();
    const first = await fetch(`${base}/note`, { method: 'POST' });
    assert.equal(first.status, 200);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    const second = await fetch(`${base}/note`, { method: 'POST', headers: { cookie } });
    assert.deepEqual(await second.json(), { n: 2 });
    const read = await fetch(`${base}/read`, { headers: { cookie } });
    assert.deepEqual(await read.json(), { n: 2 });

    const { spans } = recording;
    const opens = spans.filter((s) => s.name === 'open');
    const commits = spans.filter((s) => s.name === 'commit');
    assert.deepEqual(opens.map((s) => s.context.method), ['POST', 'POST', 'GET']);
    assert.equal(commits.length, 3);
    assert.ok(spans.every((s) => s.ended && !s.events.includes('error')), JSON.stringify(spans.map((s) => [s.name, s.events])));
    // The first request had no cookie: no store read; its commit stored the new session.
    assert.equal(opens[0]!.context.handle, null);
    const handle = opens[1]!.context.handle;
    assert.equal(typeof handle, 'string');
    assert.equal(commits[0]!.context.handle, null);
    assert.equal(commits[1]!.context.handle, handle);
    assert.equal(opens[2]!.context.handle, handle);

    const calls = spans.filter((s) => s.name === 'store');
    assert.ok(calls.length >= 3, `store spans: ${calls.map((c) => c.context.operation).join(',')}`);
    for (const call of calls) {
      assert.equal(call.context.store, store.name);
      assert.ok(call.parent === undefined || call.parent.name === 'open' || call.parent.name === 'commit');
    }
    // Each write: the session read under its open, the write under its commit.
    assert.ok(calls.some((c) => c.context.operation === 'get' && c.parent === opens[1]), 'a get under the second open');
    assert.ok(calls.some((c) => c.context.operation === 'set' && c.parent === commits[0]), 'the new session stored under the first commit');
    assert.ok(calls.some((c) => c.context.operation === 'set' && c.parent === commits[1]), 'the change stored under the second commit');
    assert.equal(calls.filter((c) => c.parent === undefined).length, 0);

    const id = decodeURIComponent(cookie.split('=')[1]!).split('.')[0]!;
    const traced = JSON.stringify(spans.map((s) => s.context));
    for (const secret of [id, 'private-note-7f3a']) assert.ok(!traced.includes(secret), `a context carries ${secret === id ? 'the session ID' : 'session data'}`);
  });

  /** A stored session read, traced, while the store's reads fail with `fault`: answered 503. */
  async function readWhileGetFails(fault: 'reject' | 'hang'): Promise<{ open: Span; get: Span }> {
    const created = await fetch(`${base}/note`, { method: 'POST' });
    const cookie = created.headers.get('set-cookie')!.split(';')[0]!;
    recording = record();
    store.fail('get', fault);
    const r = await fetch(`${base}/read`, { headers: { cookie } });
    assert.equal(r.status, 503);
    const open = recording.spans.find((s) => s.name === 'open')!;
    const get = recording.spans.find((s) => s.name === 'store' && s.context.operation === 'get')!;
    assert.equal(get.parent, open);
    return { open, get };
  }

  it('a store that fails when traced then the store call and the open carry the error, and the request is answered 503', async () => {
    const { open, get } = await readWhileGetFails('reject');
    for (const span of [open, get]) {
      assert.deepEqual(span.events, ['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      assert.equal((span.context.error as { code?: string }).code, 'STORE_UNAVAILABLE');
    }
  });

  it('a store call that hangs when traced then its span ends with the deadline\'s error', async () => {
    const { get } = await readWhileGetFails('hang');
    assert.ok(get.ended);
    assert.match(String((get.context.error as Error).message), /storeTimeoutMs/);
  });

  it('no subscriber when opening then openNow answers at once, as untraced adapters rely on', async () => {
    assert.equal(diagnostics.tracingChannel(TRACING_CHANNEL_NAMES.open).start.hasSubscribers, false);
    const untraced = tether.openNow(view('GET'));
    assert.ok(!(untraced instanceof Promise));
    recording = record();
    const traced = tether.openNow(view('GET'));
    assert.ok(traced instanceof Promise);
    assert.equal((await traced).isNew, true);
  });
});
