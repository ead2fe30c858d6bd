/**
 * examples/forms.ts in Chromium with JavaScript off: notes posted by its form are listed after the 303,
 * in order. A page on another loopback port posting the same form to it (a CSRF attack) is refused by
 * the Origin check: a different port on 127.0.0.1 is the same site, so the victim's SameSite=Lax cookie
 * goes with that post, and Sec-Fetch-Site says `same-site`, not `cross-site`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { freePort } from '../helpers/net.js';
import { startApp } from '../helpers/node-process.js';
import type { AppProcess } from '../helpers/node-process.js';

let app: AppProcess;
let attacker: http.Server;
let attackerUrl: string;
let browser: Browser;
let context: BrowserContext;

before(async () => {
  app = await startApp({ script: 'examples/forms.ts', port: await freePort(), healthPath: '/' });
  // The attacker's page has a button, not a script that submits it: JavaScript is off in the victim's browser.
  const page = `<!doctype html><title>Prize</title>
<form method="post" action="${app.url}/notes">
  <input type="hidden" name="note" value="pwned"><input type="hidden" name="_csrf" value="guess">
  <button>Claim your prize</button>
</form>`;
  attacker = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page));
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  browser = await launchChromium();
  context = await browser.newContext({ javaScriptEnabled: false });
  context.setDefaultTimeout(15_000);
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => attacker?.close(resolve) ?? resolve(undefined));
  await app?.stop();
});

const notes = (page: Page): Promise<string[]> => page.getByRole('listitem').allTextContents();

/** Submits the form and waits for the page the 303 leads to: its URL is the one the form was on, so waiting for the URL would not. */
async function addNote(page: Page, note: string): Promise<void> {
  const before = await page.getByRole('listitem').count();
  await page.getByLabel('Note').fill(note);
  const [posted] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${app.url}/notes`),
    page.getByRole('button', { name: 'Add' }).click(),
  ]);
  assert.equal(posted.status(), 303);
  await page.getByRole('listitem').nth(before).waitFor();
}

describe('forms example e2e', { timeout: 120_000 }, () => {
  let victim: Page;

  it('page with JavaScript off when its form is submitted three times then lists the three notes in order', async () => {
    victim = await context.newPage();
    await victim.goto(`${app.url}/`);
    assert.deepEqual(await notes(victim), []);
    await addNote(victim, 'first');
    assert.deepEqual(await notes(victim), ['first']);
    await addNote(victim, 'second <b>bold</b>');
    await addNote(victim, 'third');
    assert.deepEqual(await notes(victim), ['first', 'second <b>bold</b>', 'third'], 'listed in order, markup shown as text');
  });

  it('form on another port when submitted with the victim\'s cookie then is refused by the Origin check and stores nothing', async () => {
    const page = await context.newPage();
    await page.goto(`${attackerUrl}/`);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${app.url}/notes`),
      page.getByRole('button', { name: 'Claim your prize' }).click(),
    ]);
    const sent = await answer.request().allHeaders();
    assert.equal(sent.origin, attackerUrl, 'the browser names the page the form came from');
    assert.match(sent.cookie ?? '', /\bsid=/, 'same site: the Lax cookie went with the cross-origin post');
    assert.equal(sent['sec-fetch-site'], 'same-site', 'so Sec-Fetch-Site alone does not refuse it');
    assert.equal(answer.status(), 403);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'ORIGIN_MISMATCH');

    await victim.reload();
    assert.deepEqual(await notes(victim), ['first', 'second <b>bold</b>', 'third'], 'no pwned note');
  });
});
