/**
 * tether/node with `csrf.forms`: the adapter reads no body, so a form route skips its check and the
 * handler calls `checkFormPost` with the fields it parsed; a route that does not is refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkFormPost, withSessions } from '../../src/adapters/node-http/index.js';
import type { Tether } from '../../src/core/engine.js';
import { listen } from '../../src/testing/adapter-kit.js';
import { addItem, formCases, formSetup, parseUrlencoded } from './csrf-forms.kit.js';
import type { FormData } from './csrf-forms.kit.js';

async function readForm(req: IncomingMessage): Promise<Record<string, string | string[]>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return /^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '') ? parseUrlencoded(Buffer.concat(chunks).toString('utf8')) : {};
}

function json(res: ServerResponse, body: unknown): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

/** The routes whose handlers check the form themselves. */
const FORM_ROUTES = new Set(['/add']);

function start(tether: Tether<FormData>, seen: unknown[]) {
  const handler = withSessions(tether, async (req, res, session) => {
    if (req.url === '/token') return json(res, { token: session.csrfToken });
    if (req.url === '/state') return json(res, { cart: session.data.cart ?? [] });
    if (req.url === '/add') {
      const fields = await readForm(req);
      checkFormPost(tether, session, req, fields);
      return json(res, await addItem(session, fields, seen));
    }
    // Checked by the adapter, as every route is by default: it reads no body.
    if (req.url === '/add-unchecked-body') return json(res, await addItem(session, await readForm(req), seen));
    res.statusCode = 404;
    res.end();
  }, { csrf: (req) => !FORM_ROUTES.has(req.url ?? ''), onError: () => {} });
  return listen(createServer((req, res) => void handler(req, res)));
}

describe('node:http withSessions() with csrf.forms', () => {
  formCases('node:http', start);

  it('node:http: form post to a route the adapter checks, with the token only in _csrf, then 403 CSRF_TOKEN_INVALID saying to send the header', async (t) => {
    const env = await formSetup(t, start);
    const reply = await env.post('/add-unchecked-body', `item=tea&_csrf=${encodeURIComponent(env.token)}`);
    assert.equal(reply.status, 403);
    assert.equal(reply.code, 'CSRF_TOKEN_INVALID');
    assert.match(reply.message!, /reads no request body.*x-csrf-token header.*checkFormPost/);
    assert.deepEqual(env.seen, []);
    const header = await env.post('/add-unchecked-body', 'item=tea', { 'x-csrf-token': env.token });
    assert.equal(header.status, 200, 'the header passes there');
    assert.deepEqual(await env.cart(), ['tea']);
  });
});
