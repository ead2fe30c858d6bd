/**
 * The shop end to end in Chromium (playwright-core + Debian chromium): browse → add to cart → register →
 * cart kept → every checkout step → order listed; a second browser resumes the unfinished checkout;
 * "log out other sessions" logs the other browser out (its open page says so at once, through the live
 * channel), and so does a password change; the admin disables
 * and enables the account from the admin page; the shopper deletes it; the admin page says so when the
 * session store fails; a visitor without an account checks out as a guest and finds the order on the
 * orders page, which sends a visitor without guest orders to log in; a page left alone past the idle
 * timeout says it was signed out for inactivity. Screenshots go to test-artifacts/;
 * docs/shop.png (the README's) is written when missing or when UPDATE_SCREENSHOTS=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { ADMIN_PASSWORD, REPO_ROOT, ShopClient, startTestShop, uniqueName } from '../helpers/shop.js';
import { connect } from '../helpers/ws.js';
import type { TestShop } from '../helpers/shop.js';

const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const README_SHOT = join(REPO_ROOT, 'docs', 'shop.png');
const USERNAME = 'ada_lovelace';
const PASSWORD = 'analytical engine 1843';

let t: TestShop;
let browser: Browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  t = await startTestShop();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await t?.stop();
});

async function newPage(): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('status of 40')) errors.push(m.text());
  });
  return { context, page, errors };
}

const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `shop-${name}.png`) });

/**
 * Waits use locators only: the shop's Content-Security-Policy (script-src 'self') forbids the string
 * evaluation that page.waitForFunction and page.evaluate with a string would need.
 */
async function waitForCount(page: Page, count: string): Promise<void> {
  await page.getByTestId('cart-count').filter({ hasText: new RegExp(`^${count}$`) }).waitFor();
}

/** Fills the checkout's shipping form with one address. */
async function fillShipping(page: Page): Promise<void> {
  await page.getByLabel('Full name').fill('Ada Lovelace');
  await page.getByLabel('Address').fill('12 St James Square');
  await page.getByLabel('City').fill('London');
  await page.getByLabel('Postal code').fill('SW1Y 4JH');
  await page.getByLabel('Country').fill('United Kingdom');
}

/**
 * Registers a new account in `page` as a shopper would, on the shop at `url`; resolves, once signed
 * in, with the time just before the form was sent (before the session was made).
 */
async function registerInPage(page: Page, url: string, prefix: string): Promise<number> {
  await page.goto(url + '/register');
  await page.fill('#username', uniqueName(prefix));
  await page.fill('#password', 'correct horse battery');
  const sent = Date.now();
  await page.locator('form button[type=submit]').click();
  await page.getByTestId('user').waitFor();
  return sent;
}

/**
 * Logs `username` in as a shopper would: from the login page of the shop at `url`, asked to go on to
 * `next` afterwards, or, without `url`, from the login form `page` shows already.
 */
async function loginInPage(page: Page, username: string, password: string, url?: string, next?: string): Promise<void> {
  if (url !== undefined) await page.goto(`${url}/login${next === undefined ? '' : `?next=${next}`}`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Logs the admin in from the login page of the shop at `url`, onto the admin page. */
async function adminInPage(page: Page, url: string): Promise<void> {
  await loginInPage(page, 'admin', ADMIN_PASSWORD, url, '/admin');
  await page.waitForURL(`${url}/admin`);
}

/** A new account with a mug in its cart, signed in on another device (an API client): its name and that client. */
async function accountWithMug(prefix: string): Promise<{ username: string; other: ShopClient }> {
  const username = uniqueName(prefix);
  const other = new ShopClient(t.url);
  await other.register(username);
  await other.add('camp-mug');
  return { username, other };
}

/**
 * Holds the shop's orders inside their placing (after the checkout's run was taken, before it ends)
 * from `hold()` on: `reached` resolves once one is held, `release()` lets them go, `restore()` (in a
 * `finally`) lets them go and puts the database's own call back.
 */
function holdOrders(): { hold(): void; readonly reached: Promise<void>; release(): void; restore(): void } {
  const db = t.shop.db as unknown as { placeOrder: (...args: unknown[]) => Promise<unknown> };
  const placeOrder = db.placeOrder;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let taken!: () => void;
  const reached = new Promise<void>((resolve) => (taken = resolve));
  return {
    hold: () => {
      db.placeOrder = async (...args: unknown[]) => {
        taken();
        await held;
        return placeOrder.apply(t.shop.db, args);
      };
    },
    reached,
    release: () => release(),
    restore: () => {
      release();
      db.placeOrder = placeOrder;
    },
  };
}

/** A shipping step's fields, as the API takes them. */
const ADA_SHIPPING = { name: 'Ada Lovelace', address: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'United Kingdom' };

/**
 * Makes the shop's session store fail `method` (every call rejects, as with the store down) until
 * `end()`; call `end()` in a `finally` too.
 */
function storeOutage(method: 'get' | 'set'): { begin(): void; end(): void } {
  const store = t.shop.tether.store as unknown as Record<string, unknown>;
  return {
    begin: () => void (store[method] = () => Promise.reject(new Error('the store is down'))),
    end: () => void delete store[method],
  };
}

async function cartCount(page: Page): Promise<string> {
  return (await page.getByTestId('cart-count').textContent()) ?? '';
}

describe('shop e2e', { timeout: 180_000 }, () => {
  let a: Awaited<ReturnType<typeof newPage>>;
  let b: Awaited<ReturnType<typeof newPage>>;
  let admin: Awaited<ReturnType<typeof newPage>>;

  it('shopper when browsing then sees the catalog and gets no cookie', async () => {
    a = await newPage();
    await a.page.goto(t.url + '/');
    await a.page.getByTestId('product-card').first().waitFor();
    assert.ok((await a.page.getByTestId('product-card').count()) >= 20);
    await a.page.getByRole('link', { name: 'Enamel Camp Mug' }).click();
    await a.page.getByRole('heading', { name: 'Enamel Camp Mug' }).waitFor();
    assert.deepEqual(await a.context.cookies(), [], 'browsing created no session');
  });

  it('shopper when adding to cart with the keyboard then the badge counts the items', async () => {
    const { page } = a;
    await page.fill('#qty', '2');
    await page.getByTestId('add-to-cart').focus();
    await page.keyboard.press('Enter');
    await waitForCount(page, '2');
    await page.goto(t.url + '/');
    await page.getByRole('button', { name: 'Add Wireless Headphones to cart' }).click();
    await waitForCount(page, '3');
    assert.equal((await a.context.cookies()).length, 1, 'the first add created the session');
    await shot(page, '1-catalog');
    if (!existsSync(README_SHOT) || process.env.UPDATE_SCREENSHOTS === '1') {
      await page.locator('header').first().scrollIntoViewIfNeeded();
      await page.screenshot({ path: README_SHOT });
    }
  });

  it('shopper when registering from the cart then is logged in with the cart kept', async () => {
    const { page } = a;
    await page.getByRole('link', { name: /^Cart, 3 items/ }).click();
    await page.getByTestId('cart-line').nth(1).waitFor();
    assert.equal(await page.getByTestId('cart-items').textContent(), '3');
    await shot(page, '2-cart');
    await page.getByTestId('to-checkout').click();
    await page.waitForURL(/\/login\?next=%2Fcheckout|\/login\?next=\/checkout/);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.waitForURL(/\/register/);
    await page.fill('#username', USERNAME);
    await page.fill('#password', PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL((u) => u.pathname === '/checkout');
    await page.getByTestId('user').waitFor();
    assert.equal(await page.getByTestId('user').textContent(), `Hi, ${USERNAME}`);
    assert.equal(await cartCount(page), '3', 'the anonymous cart was kept');
  });

  it('shopper when filling shipping then reaches payment; a second browser logging in resumes at payment', async () => {
    const { page } = a;
    await page.locator('form[data-step=shipping]').waitFor();
    await fillShipping(page);
    await shot(page, '3-shipping');
    await page.getByRole('button', { name: 'Continue to payment' }).click();
    await page.locator('form[data-step=payment]').waitFor();

    b = await newPage();
    await b.page.goto(t.url + '/login?next=/checkout');
    await b.page.fill('#username', USERNAME);
    await b.page.fill('#password', PASSWORD);
    await b.page.getByLabel('Keep me signed in on this device').check();
    await b.page.getByRole('button', { name: 'Log in' }).click();
    // The path, not the URL's end: /login?next=/checkout ends the same way.
    await b.page.waitForURL((u) => u.pathname === '/checkout');
    await b.page.locator('form[data-step=payment]').waitFor();
    // Kept signed in: the browser holds a persistent cookie (about 14 days); the first browser's lasts the browser session.
    const [kept] = await b.context.cookies();
    assert.ok(kept!.expires * 1000 > Date.now() + 13 * 86_400_000, `persistent cookie, expires ${kept!.expires}`);
    assert.equal((await a.context.cookies())[0]!.expires, -1, 'the first browser, not kept signed in, has a session cookie');
    assert.equal(await b.page.locator('.steps li[aria-current=step]').textContent(), 'Payment');
    assert.equal(await cartCount(b.page), '3', 'the second browser sees the same cart');
    await shot(b.page, '4-resumed-on-second-browser');
  });

  it('shopper when paying, going back and confirming then the order is placed and listed', async () => {
    const { page } = a;
    await page.getByLabel('Card number').fill('4242 4242 4242 4241');
    await page.getByLabel('Expiry (MM/YY)').fill('12/39');
    await page.getByRole('button', { name: 'Review order' }).click();
    await page.getByText('not a valid card number').waitFor();
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByRole('button', { name: 'Review order' }).click();
    await page.locator('[data-step=review]').waitFor();
    assert.match((await page.getByTestId('review-payment').textContent()) ?? '', /Visa ending in 4242/);
    await page.getByTestId('back').click();
    await page.locator('form[data-step=payment]').waitFor();
    await page.getByLabel('Card number').fill('4242424242424242');
    await page.getByLabel('Expiry (MM/YY)').fill('11/38');
    await page.getByRole('button', { name: 'Review order' }).click();
    await page.locator('[data-step=review]').waitFor();
    await shot(page, '5-review');
    await page.getByTestId('place-order').click();
    await page.getByTestId('order-placed').waitFor();
    const orderId = (await page.getByTestId('order-id').textContent())!;
    assert.match(orderId, /^ord_/);
    assert.equal(await cartCount(page), '0', 'the cart was emptied');
    await page.getByRole('link', { name: 'See your orders' }).click();
    await page.locator(`[data-order="${orderId}"]`).waitFor();
    await shot(page, '6-orders');
  });

  it('shopper when logging out other sessions then the other browser is logged out, and its open page says so at once', async () => {
    const { page } = a;
    // The other browser shows a page, signed in, with its live channel open.
    await b.page.goto(t.url + '/');
    await b.page.getByTestId('user').waitFor();
    await page.goto(t.url + '/account');
    await page.getByTestId('session-row').nth(1).waitFor();
    assert.equal(await page.getByTestId('session-row').count(), 2);
    assert.equal(await page.getByTestId('session-row').filter({ hasText: 'Kept signed in' }).count(), 1, 'the second browser\'s session is marked');
    assert.deepEqual(await page.getByTestId('session-network').allTextContents(), ['127.0.0.0/24', '127.0.0.0/24'], 'each session shows the network it was last seen from');
    await shot(page, '7-account');
    await page.getByTestId('logout-others').click();
    await page.getByTestId('session-row').nth(1).waitFor({ state: 'detached' });
    // Without a reload or a click: the live channel closed when the session ended.
    await b.page.getByTestId('signed-out').waitFor();
    await b.page.getByRole('link', { name: 'Log in again' }).waitFor();
    assert.equal(await b.page.getByTestId('user').count(), 0, 'the header no longer greets the user');
    await shot(b.page, '7b-signed-out');
    await b.page.goto(t.url + '/account');
    await b.page.waitForURL(/\/login\?next=/);
    await b.page.getByRole('link', { name: 'Log in' }).waitFor();
    assert.equal(await cartCount(b.page), '0');
    await page.reload();
    await page.getByTestId('session-row').first().waitFor();
    assert.equal(await page.getByTestId('user').textContent(), `Hi, ${USERNAME}`, 'this browser stays logged in');
  });

  it('shopper when signing in again in another tab then the open page keeps quiet and follows the new session; a logout there is then told here', async () => {
    const { page, context } = a;
    await page.goto(t.url + '/');
    await page.getByTestId('user').waitFor();
    // The page's next live socket: the one it opens once its first has ended.
    const reopened = new Promise<void>((resolve) => page.on('websocket', (ws) => {
      if (ws.url().endsWith('/api/live')) ws.on('framereceived', (f) => String(f.payload).includes('hello') && resolve());
    }));
    const tab = await context.newPage();
    await tab.goto(t.url + '/login');
    await tab.fill('#username', USERNAME);
    await tab.fill('#password', PASSWORD);
    await tab.getByRole('button', { name: 'Log in' }).click();
    await tab.waitForURL(`${t.url}/`);
    await tab.getByTestId('user').waitFor();
    // The login gave the browser a new session: the first page's channel ended (regenerated), and the
    // page, finding itself still signed in, opened a new one on the new session without a word.
    await reopened;
    assert.equal(await page.getByTestId('signed-out').count(), 0, 'no notice for a login in another tab');
    assert.equal(await page.getByTestId('user').textContent(), `Hi, ${USERNAME}`);
    await tab.getByRole('button', { name: 'Log out' }).click();
    await page.getByTestId('signed-out').waitFor();
    assert.equal(await page.getByTestId('user').count(), 0);
    // Closed once its own logout has taken it home (closing it mid-navigation can stall Chromium). The tab
    // that logged out is not told it was signed out: it knows.
    await tab.getByRole('link', { name: 'Log in', exact: true }).waitFor();
    assert.equal(await tab.getByTestId('signed-out').count(), 0);
    await tab.close();
    // Signed in again for what follows.
    await page.getByRole('link', { name: 'Log in again' }).click();
    await page.fill('#username', USERNAME);
    await page.fill('#password', PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${t.url}/`);
    await page.getByTestId('user').waitFor();
    assert.equal(await page.getByTestId('signed-out').count(), 0);
  });

  it('shopper when changing the password then the other browser is logged out and only the new password logs in', async () => {
    await b.page.goto(t.url + '/login?next=/account');
    await b.page.fill('#username', USERNAME);
    await b.page.fill('#password', PASSWORD);
    await b.page.getByRole('button', { name: 'Log in' }).click();
    // The exact URL: the login page's own (?next=/account) ends with /account too.
    await b.page.waitForURL(`${t.url}/account`);
    const { page } = a;
    await page.goto(t.url + '/account');
    await page.getByTestId('session-row').nth(1).waitFor();
    await page.getByLabel('Current password').fill('not my password');
    await page.getByLabel('New password').fill('difference engine 1822');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('The current password is wrong.').waitFor();
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed; 1 other session logged out').waitFor();
    await page.getByTestId('session-row').nth(1).waitFor({ state: 'detached' });
    await b.page.goto(t.url + '/account');
    await b.page.waitForURL(/\/login\?next=/);
    await b.page.fill('#username', USERNAME);
    await b.page.fill('#password', PASSWORD);
    await b.page.getByRole('button', { name: 'Log in' }).click();
    await b.page.getByText('Wrong username or password.').waitFor();
    await b.page.fill('#password', 'difference engine 1822');
    await b.page.getByRole('button', { name: 'Log in' }).click();
    await b.page.waitForURL(`${t.url}/account`);
    // This browser's session was renewed (new ID and CSRF token): it keeps working.
    await page.reload();
    await page.getByTestId('session-row').nth(1).waitFor();
    await page.getByTestId('logout-others').click();
    await page.getByTestId('session-row').nth(1).waitFor({ state: 'detached' });
  });

  it('shop when switched to the dark theme then keeps it across pages, and the pages raised no errors', async () => {
    const { page } = a;
    await page.goto(t.url + '/');
    await page.getByTestId('product-card').first().waitFor();
    await page.getByTestId('theme-toggle').click();
    await page.locator('html[data-theme=dark]').waitFor({ state: 'attached' });
    await page.goto(t.url + '/cart');
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
    await shot(page, '8-dark');
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  });

  it('admin when disabling the shopper then both browsers are logged out and login says the account is disabled; enabling lets them back in', async () => {
    const { page: shopperB } = b;
    await shopperB.goto(t.url + '/login?next=/account');
    await shopperB.fill('#username', USERNAME);
    await shopperB.fill('#password', 'difference engine 1822');
    await shopperB.getByRole('button', { name: 'Log in' }).click();
    await shopperB.waitForURL(`${t.url}/account`);

    admin = await newPage();
    const { page } = admin;
    await adminInPage(page, t.url);
    await page.getByTestId('store-sessions').filter({ hasText: /^\d+ sessions, of at most 1000000:/ }).waitFor();
    await page.getByLabel('Find by name').fill(USERNAME.slice(0, 4));
    await page.getByTestId('user-row').filter({ hasText: USERNAME }).getByRole('button', { name: USERNAME }).click();
    await page.getByTestId('user-status').filter({ hasText: /^Active$/ }).waitFor();
    assert.equal(await page.getByTestId('user-sessions').textContent(), '2');
    await page.getByRole('button', { name: 'Disable account' }).click();
    await page.getByTestId('user-result').filter({ hasText: `Disabled ${USERNAME} and ended 2 sessions.` }).waitFor();
    await page.getByTestId('user-status').filter({ hasText: /^Disabled since/ }).waitFor();
    await page.getByTestId('user-row').filter({ hasText: USERNAME }).filter({ hasText: 'Disabled' }).waitFor();
    assert.equal(await page.getByTestId('user-sessions').textContent(), '0');
    await shot(page, '9-admin-disabled');

    await a.page.goto(t.url + '/account');
    await a.page.waitForURL(/\/login\?next=/);
    await shopperB.reload();
    await shopperB.waitForURL(/\/login\?next=/);
    await shopperB.fill('#username', USERNAME);
    await shopperB.fill('#password', 'difference engine 1822');
    await shopperB.getByRole('button', { name: 'Log in' }).click();
    await shopperB.getByText('This account is disabled. Contact the shop to have it enabled.').waitFor();

    await page.getByRole('button', { name: 'Enable account' }).click();
    await page.getByTestId('user-status').filter({ hasText: /^Active$/ }).waitFor();
    await shopperB.getByRole('button', { name: 'Log in' }).click();
    await shopperB.waitForURL(`${t.url}/account`);
  });

  it('shopper when deleting the account then is logged out everywhere and the name no longer logs in', async () => {
    const { page } = b;
    await page.getByLabel('Password', { exact: true }).fill('not my password');
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await page.getByText('The password is wrong.').waitFor();
    await page.getByLabel('Password', { exact: true }).fill('difference engine 1822');
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await page.waitForURL(`${t.url}/`);
    await page.getByRole('link', { name: 'Log in' }).waitFor();
    assert.equal(await page.getByTestId('user').count(), 0);

    await a.page.goto(t.url + '/login');
    await a.page.fill('#username', USERNAME);
    await a.page.fill('#password', 'difference engine 1822');
    await a.page.getByRole('button', { name: 'Log in' }).click();
    await a.page.getByText('Wrong username or password.').waitFor();

    await admin.page.getByRole('button', { name: 'Look up' }).click();
    await admin.page.getByTestId('user-result').filter({ hasText: 'no such user' }).waitFor();
    assert.deepEqual([...a.errors, ...b.errors, ...admin.errors], []);
  });
});

describe('shop in Chromium: where a login goes next', () => {
  it('login when ?next= names another origin, however spelled (a tab or line break the URL parser drops) then the browser stays on the shop', async () => {
    const { context, page } = await newPage();
    const offSite: string[] = [];
    await context.route((url) => url.origin !== new URL(t.url).origin, async (route) => {
      offSite.push(route.request().url());
      await route.abort();
    });
    try {
      for (const next of ['/%09/evil.example/phish', '/%0a/evil.example/x', '/%0D/evil.example/y', '//evil.example/z', '/\\evil.example', 'https://evil.example/', '/.//evil.example/x', '/a/..//evil.example', '/%2e//evil.example', '/account?tab=orders']) {
        await context.clearCookies();
        await page.goto(`${t.url}/login?next=${next}`);
        await page.fill('#username', 'admin');
        await page.fill('#password', ADMIN_PASSWORD);
        await page.getByRole('button', { name: 'Log in' }).click();
        const expected = next.startsWith('/account') ? `${t.url}/account?tab=orders` : `${t.url}/`;
        await page.waitForURL(expected);
        assert.equal(page.url(), expected, next);
      }
      assert.deepEqual(offSite, []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: the admin page in a store outage', () => {
  it('admin page when the session store fails then says so in place of the figures, and shows them again once the store answers', async () => {
    const { context, page, errors } = await newPage();
    const outage = storeOutage('get');
    try {
      await adminInPage(page, t.url);
      await page.getByTestId('node-row').waitFor();
      // This page's own live channel, at least, within a refresh of the figures.
      await page.getByTestId('live-sockets').filter({ hasText: /^[1-9]\d*$/ }).waitFor();
      // Every request that reads a session now fails as it does with the store down: 503 STORE_UNAVAILABLE.
      outage.begin();
      await page.getByTestId('admin-error').filter({ hasText: 'The figures could not be loaded (trying again every 5 s): the session store failed on get' }).waitFor();
      assert.equal(await page.getByTestId('node-row').count(), 0, 'no stale figures');
      await shot(page, '10-admin-store-outage');
      outage.end();
      await page.getByTestId('node-row').waitFor();
      assert.equal(await page.getByTestId('admin-error').count(), 0);

      // Reloaded during the outage: the page and its scripts open no session and load; its first call fails.
      outage.begin();
      await page.reload();
      await page.getByTestId('admin-error').filter({ hasText: 'The admin page could not be loaded; reload it to try again: the session store failed on get' }).waitFor();
      outage.end();
      await page.reload();
      await page.getByTestId('node-row').waitFor();
      assert.deepEqual(errors.filter((e) => !e.includes('status of 503')), []);
    } finally {
      outage.end();
      await context.close();
    }
  });
});

describe('shop in Chromium: guest checkout', { timeout: 120_000 }, () => {
  it('guest when checking out without an account then gives an email, takes every step and sees the order, stored without a user and listed on the orders page', async () => {
    const { context, page, errors } = await newPage();
    try {
      await page.goto(t.url + '/');
      await page.getByRole('button', { name: 'Add Wireless Headphones to cart' }).click();
      await waitForCount(page, '1');
      await page.getByRole('link', { name: /^Cart, 1 item/ }).click();
      await page.getByTestId('cart-line').first().waitFor();
      await page.getByTestId('guest-checkout').click();
      await page.waitForURL((u) => u.pathname === '/checkout');
      await page.locator('form[data-step=contact]').waitFor();
      assert.equal(await page.locator('.steps li[aria-current=step]').textContent(), 'Contact');
      assert.equal(await page.getByTestId('user').count(), 0, 'still not logged in');

      await page.getByLabel('Email').fill('ada@localhost');
      await page.getByRole('button', { name: 'Continue to shipping' }).click();
      await page.getByText('email must be an email address').waitFor();
      await page.getByLabel('Email').fill('ada@example.org');
      await shot(page, '11-guest-contact');
      await page.getByRole('button', { name: 'Continue to shipping' }).click();
      await page.locator('form[data-step=shipping]').waitFor();
      await fillShipping(page);
      await page.getByRole('button', { name: 'Continue to payment' }).click();
      await page.locator('form[data-step=payment]').waitFor();
      await page.getByLabel('Card number').fill('5555 5555 5555 4444');
      await page.getByLabel('Expiry (MM/YY)').fill('10/37');
      await page.getByRole('button', { name: 'Review order' }).click();
      await page.locator('[data-step=review]').waitFor();
      assert.equal(await page.getByTestId('review-contact').textContent(), 'ada@example.org');
      assert.match((await page.getByTestId('review-payment').textContent()) ?? '', /Mastercard ending in 4444/);
      await shot(page, '12-guest-review');
      const confirm = page.waitForRequest((r) => new URL(r.url()).pathname === '/api/checkout/confirm');
      await page.getByTestId('place-order').click();
      const { runId } = (await confirm).postDataJSON() as { runId: string };
      await page.getByTestId('order-placed').waitFor();
      const orderId = (await page.getByTestId('order-id').textContent())!;
      assert.match(orderId, /^ord_/);
      assert.match((await page.getByTestId('order-receipt').textContent()) ?? '', /ada@example\.org/);
      assert.equal(await cartCount(page), '0', 'the cart was emptied');
      await shot(page, '13-guest-order-placed');

      const order = await t.shop.db.findOrderByKey(`guest-checkout:${runId}`);
      assert.equal(order?.id, orderId);
      assert.equal(order?.userId, null);
      assert.equal(order?.email, 'ada@example.org');

      await page.getByRole('link', { name: 'Your orders' }).click();
      await page.waitForURL((u) => u.pathname === '/orders');
      const listed = page.locator(`[data-order="${orderId}"]`);
      await listed.waitFor();
      assert.match((await page.getByTestId('guest-orders-note').textContent()) ?? '', /placed in this browser as a guest/);
      assert.equal(await listed.getByTestId('order-email').textContent(), 'Receipt to ada@example.org');
      assert.equal(await page.getByTestId('order').count(), 1);
      assert.equal(await page.getByTestId('user').count(), 0, 'still not logged in');
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Orders' }).waitFor();
      await shot(page, '14-guest-orders');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('visitor when opening the orders page without orders placed as a guest then is sent to log in, with or without a session', async () => {
    const { context, page, errors } = await newPage();
    try {
      await page.goto(t.url + '/orders');
      await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === '/orders');
      await page.goto(t.url + '/');
      await page.getByRole('button', { name: 'Add Wireless Headphones to cart' }).click();
      await waitForCount(page, '1');
      await page.goto(t.url + '/orders');
      await page.waitForURL((u) => u.pathname === '/login');
      assert.equal(await page.getByTestId('order').count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('guest when the session ends mid-checkout (its cookie gone, as at expiry) then the page shows the checkout started over and says why, at a step and at Place order', async () => {
    const { context, page, errors } = await newPage();
    try {
      const toReview = async (): Promise<void> => {
        await page.goto(t.url + '/');
        await page.getByRole('button', { name: 'Add Wireless Headphones to cart' }).click();
        await waitForCount(page, '1');
        await page.goto(t.url + '/checkout');
        await page.getByLabel('Email').fill('ada@example.org');
        await page.getByRole('button', { name: 'Continue to shipping' }).click();
        await page.locator('form[data-step=shipping]').waitFor();
      };
      await toReview();
      await context.clearCookies();
      await fillShipping(page);
      await page.getByRole('button', { name: 'Continue to payment' }).click();
      await page.locator('form[data-step=contact]').waitFor();
      await page.locator('#step-error').filter({ hasText: /^This checkout started over .*your session ended\), so that step was not saved\.$/ }).waitFor();

      await toReview();
      await fillShipping(page);
      await page.getByRole('button', { name: 'Continue to payment' }).click();
      await page.getByLabel('Card number').fill('5555 5555 5555 4444');
      await page.getByLabel('Expiry (MM/YY)').fill('10/37');
      await page.getByRole('button', { name: 'Review order' }).click();
      await page.locator('[data-step=review]').waitFor();
      await context.clearCookies();
      await page.getByTestId('place-order').click();
      // Not left on a review of a cart that went with the session, its button repeating the refusal.
      await page.locator('form[data-step=contact]').waitFor();
      await page.locator('#step-error').filter({ hasText: /^This checkout started over / }).waitFor();
      assert.equal(await page.getByTestId('place-order').count(), 0);
      assert.equal(await cartCount(page), '0');
      assert.deepEqual(errors.filter((e) => !/status of 409/.test(e)), []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: step-up at checkout', () => {
  it('signed-in shopper when the sign-in is older than SHOP_REAUTH_WINDOW then Place order asks for the password: cancelled or wrong places nothing, the right one places the order', async () => {
    const shop = await startTestShop({ SHOP_REAUTH_WINDOW: '0' });
    const { context, page, errors } = await newPage();
    try {
      await registerInPage(page, shop.url, 'stepup');
      await page.goto(shop.url + '/');
      await page.getByRole('button', { name: 'Add Wireless Headphones to cart' }).click();
      await waitForCount(page, '1');
      await page.goto(shop.url + '/checkout');
      await page.locator('form[data-step=shipping]').waitFor();
      await fillShipping(page);
      await page.getByRole('button', { name: 'Continue to payment' }).click();
      await page.locator('form[data-step=payment]').waitFor();
      await page.getByLabel('Card number').fill('4242 4242 4242 4242');
      await page.getByLabel('Expiry (MM/YY)').fill('11/38');
      await page.getByRole('button', { name: 'Review order' }).click();
      await page.locator('[data-step=review]').waitFor();

      const dialog = page.getByTestId('reauth');
      await page.getByTestId('place-order').click();
      await dialog.getByText('Enter your password to place the order').waitFor();
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'detached' });
      assert.equal(await page.getByTestId('order-placed').count(), 0, 'cancelled: no order');

      await page.getByTestId('place-order').click();
      await dialog.getByLabel('Password').fill('not the password at all');
      await dialog.getByRole('button', { name: 'Confirm' }).click();
      await page.locator('#step-error').filter({ hasText: 'the password is wrong' }).waitFor();
      assert.equal(await page.getByTestId('order-placed').count(), 0, 'wrong password: no order');
      await shot(page, '15-step-up-wrong-password');

      await page.getByTestId('place-order').click();
      await dialog.getByLabel('Password').fill('correct horse battery');
      await dialog.getByRole('button', { name: 'Confirm' }).click();
      await page.getByTestId('order-placed').waitFor();
      assert.match((await page.getByTestId('order-id').textContent()) ?? '', /^ord_/);
      assert.equal(await cartCount(page), '0');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await shop.stop();
    }
  });
});

describe('shop in Chromium: the live channel when the server refuses it', () => {
  it('live channel when its handshake is refused (the process is at SHOP_LIVE_MAX_SOCKETS) then the page tries again less and less often, and the page works', async () => {
    const full = await startTestShop({ SHOP_LIVE_MAX_SOCKETS: '1' });
    const { context, page } = await newPage();
    try {
      // Another client holds the process's one live socket.
      const holder = new ShopClient(full.url);
      assert.equal((await holder.register(uniqueName('holder'))).status, 201);
      const held = await connect(full.url.replace('http:', 'ws:') + '/api/live', { origin: full.url, cookie: holder.cookieHeader, 'user-agent': holder.userAgent });
      const attempts: number[] = [];
      page.on('websocket', (ws) => {
        if (ws.url().endsWith('/api/live')) attempts.push(Date.now());
      });
      await registerInPage(page, full.url, 'page');
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      // Refused at once each time: without the back-off that is hundreds of attempts in 4 s; with it, one
      // at once and then after 1, 2 (and 4) s.
      assert.ok(attempts.length >= 2 && attempts.length <= 4, `${attempts.length} handshakes in 4 s`);
      for (let i = 2; i < attempts.length; i++) assert.ok(attempts[i]! - attempts[i - 1]! >= attempts[i - 1]! - attempts[i - 2]!, 'each wait at least as long as the last');
      assert.equal(await page.getByTestId('signed-out').count(), 0, 'a refused channel is not a logout');
      held.ws.close();
    } finally {
      await context.close();
      await full.stop();
    }
  });
});

describe('shop in Chromium: the idle timeout', () => {
  it('signed-in page when nothing happens past the idle timeout then its open live channel does not keep the session alive, and the page says it was signed out for inactivity', async () => {
    const shop = await startTestShop({ TETHER_IDLE_TIMEOUT: '3' });
    const { context, page } = await newPage();
    try {
      // Sent before the session is made: it cannot time out earlier than 3 s after that.
      const before = await registerInPage(page, shop.url, 'idle');
      // No click, no request: the page only keeps its live channel open, and the session times out.
      await page.getByTestId('signed-out').filter({ hasText: 'after a period of inactivity' }).waitFor({ timeout: 15_000 });
      assert.ok(Date.now() - before >= 2_900, `signed out ${Date.now() - before} ms after registering, with a 3 s idle timeout`);
      assert.equal(await page.getByTestId('user').count(), 0);
      await page.getByRole('link', { name: 'Log in again' }).waitFor();
    } finally {
      await context.close();
      await shop.stop();
    }
  });
});

describe('shop in Chromium: the idle timeout told ahead of time', () => {
  it('signed-in page when the idle timeout nears then it says when, "Stay signed in" keeps the session past it, and left alone it is signed out', async () => {
    const shop = await startTestShop({ TETHER_IDLE_TIMEOUT: '8', SHOP_IDLE_WARNING: '5' });
    const { context, page, errors } = await newPage();
    try {
      const before = await registerInPage(page, shop.url, 'warned');
      const warning = page.getByTestId('idle-warning');
      await warning.waitFor({ timeout: 10_000 });
      const shownAfter = Date.now() - before;
      assert.ok(shownAfter >= 2_500 && shownAfter < 8_000, `shown ${shownAfter} ms after registering: 5 s before an 8 s timeout`);
      assert.match(await warning.textContent() ?? '', /you will be signed out at .+ after a period of inactivity/i);
      await shot(page, 'idle-warning');
      await page.getByRole('button', { name: 'Stay signed in' }).click();
      await warning.waitFor({ state: 'hidden' });
      const kept = Date.now();
      // Past the end the session had before the click: still signed in.
      await page.waitForTimeout(Math.max(0, before + 9_000 - Date.now()));
      assert.equal(await page.getByTestId('user').count(), 1, 'still signed in');
      assert.equal(await page.getByTestId('signed-out').count(), 0);
      // Left alone: warned again (asking how long is left moved nothing), then signed out.
      await warning.waitFor({ timeout: 10_000 });
      await page.getByTestId('signed-out').filter({ hasText: 'after a period of inactivity' }).waitFor({ timeout: 15_000 });
      assert.ok(Date.now() - kept >= 7_500, `signed out ${Date.now() - kept} ms after "Stay signed in", with an 8 s timeout`);
      assert.equal(await warning.count(), 0, 'the warning gives way to the notice');
      assert.equal(await page.getByTestId('user').count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await shop.stop();
    }
  });

  it('signed-in page without a live channel when the idle timeout passes then the warning\'s own check says it was signed out for inactivity', async () => {
    const shop = await startTestShop({ TETHER_IDLE_TIMEOUT: '6', SHOP_IDLE_WARNING: '3' });
    const { context, page, errors } = await newPage();
    try {
      // A browser (or a proxy in front of the shop) without WebSockets: nothing tells the page of the end
      // but its own timers.
      await context.addInitScript(() => {
        Reflect.deleteProperty(globalThis, 'WebSocket');
      });
      const sockets: string[] = [];
      page.on('websocket', (ws) => sockets.push(ws.url()));
      const before = await registerInPage(page, shop.url, 'unplugged');
      await page.getByTestId('idle-warning').waitFor({ timeout: 10_000 });
      await page.getByTestId('signed-out').filter({ hasText: 'after a period of inactivity' }).waitFor({ timeout: 15_000 });
      const after = Date.now() - before;
      assert.ok(after >= 5_900, `signed out ${after} ms after registering, with a 6 s idle timeout`);
      assert.ok(after < 12_000, `told ${after} ms after registering: a second past the end, not at some later click`);
      assert.deepEqual(sockets, [], 'no live channel was opened');
      assert.equal(await page.getByTestId('idle-warning').count(), 0, 'the warning gives way to the notice');
      assert.equal(await page.getByTestId('user').count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await shop.stop();
    }
  });
});

describe('shop in Chromium: the session ID renewed while the page is in use', () => {
  it('renewal when the ID is older than TETHER_RENEWAL_INTERVAL then the next requests of the page carry a new cookie, it stays signed in, and the old cookie ends after the grace', async () => {
    const shop = await startTestShop({ TETHER_RENEWAL_INTERVAL: '3', TETHER_RENEWAL_GRACE: '1' });
    const { context, page, errors } = await newPage();
    try {
      await registerInPage(page, shop.url, 'renew');
      const [first] = await context.cookies();
      await new Promise((r) => setTimeout(r, 3_300));
      await page.goto(shop.url + '/');
      await page.getByRole('button', { name: 'Add Wireless Headphones to cart' }).click();
      await waitForCount(page, '1');
      const [second] = await context.cookies();
      assert.equal(second!.name, first!.name);
      assert.notEqual(second!.value, first!.value, 'the browser was given a new ID');
      await page.getByRole('button', { name: 'Add Wireless Headphones to cart' }).click();
      await waitForCount(page, '2');
      assert.equal(await page.getByTestId('user').count(), 1, 'still signed in');
      assert.equal(await page.getByTestId('signed-out').count(), 0, 'the live channel took the new ID for no sign-out');
      await new Promise((r) => setTimeout(r, 1_300));
      const replayed = new ShopClient(shop.url);
      replayed.cookies.set(first!.name, first!.value);
      assert.equal((await replayed.get('/api/session')).body.authenticated, false, 'the old cookie names no session after the grace');
      await page.reload();
      await waitForCount(page, '2');
      await page.getByTestId('user').waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await shop.stop();
    }
  });
});

describe('shop in Chromium: the admin ends every session', () => {
  it('admin when ending every session after the password then the shopper\'s open page says it was signed out, and the admin is signed out too', async () => {
    const shop = await startTestShop();
    const shopper = await newPage();
    const admin = await newPage();
    try {
      await registerInPage(shopper.page, shop.url, 'all');
      await shopper.page.goto(shop.url + '/account');
      await shopper.page.getByTestId('session-row').first().waitFor();
      const { page } = admin;
      await adminInPage(page, shop.url);
      const dialog = page.getByTestId('reauth');
      await page.getByRole('button', { name: 'End every session' }).click();
      await dialog.getByText('Ending every session signs out every visitor, you included').waitFor();
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'detached' });
      assert.equal(await shopper.page.getByTestId('signed-out').count(), 0, 'cancelled: nothing ended');
      await page.getByRole('button', { name: 'End every session' }).click();
      await dialog.getByLabel('Password').fill('not the password at all');
      await dialog.getByRole('button', { name: 'Confirm' }).click();
      await page.getByTestId('end-all-result').filter({ hasText: 'the password is wrong' }).waitFor();
      await page.getByRole('button', { name: 'End every session' }).click();
      await dialog.getByLabel('Password').fill(ADMIN_PASSWORD);
      await dialog.getByRole('button', { name: 'Confirm' }).click();
      await page.locator('#toast').filter({ hasText: 'Ended 2 sessions. Log in again to go on.' }).waitFor();
      await shopper.page.getByTestId('signed-out').filter({ hasText: 'You were signed out on this device.' }).waitFor();
      await shot(shopper.page, '16-signed-out-by-admin');
      await page.waitForURL(`${shop.url}/`);
      await page.getByRole('link', { name: 'Log in' }).first().waitFor();
      await page.goto(shop.url + '/admin');
      await page.waitForURL(/\/login\?next=/);
      assert.deepEqual([...shopper.errors, ...admin.errors], []);
    } finally {
      await shopper.context.close();
      await admin.context.close();
      await shop.stop();
    }
  });
});

/** A guest in `page` with one Enamel Camp Mug in the cart, at the checkout's review step. */
async function guestAtReview(page: Page): Promise<void> {
  await page.goto(t.url + '/products/camp-mug');
  await page.getByTestId('add-to-cart').click();
  await waitForCount(page, '1');
  await page.goto(t.url + '/checkout');
  await page.getByLabel('Email').fill('ada@example.org');
  await page.getByRole('button', { name: 'Continue to shipping' }).click();
  await fillShipping(page);
  await page.getByRole('button', { name: 'Continue to payment' }).click();
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByLabel('Expiry (MM/YY)').fill('12/37');
  await page.getByRole('button', { name: 'Review order' }).click();
  await page.getByTestId('place-order').filter({ hasText: 'Place order · $14.00' }).waitFor();
}

describe('shop in Chromium: a logout the session store does not take', () => {
  it('logout when the session store fails then the page says the logout failed and still shows the user signed in; once the store answers, Try again logs out', async () => {
    const { context, page, errors } = await newPage();
    // Under renewal a logout ends the record by compare-and-set (a set), so a renewal racing it cannot keep the session.
    const outage = storeOutage('set');
    try {
      await registerInPage(page, t.url, 'out');
      await page.goto(t.url + '/account');
      await page.getByTestId('session-row').first().waitFor();
      outage.begin();
      await page.getByRole('button', { name: 'Log out here' }).click();
      await page.getByTestId('logout-failed').filter({ hasText: /^Logging out failed \(the session store failed on set\): you are still signed in\./ }).waitFor();
      assert.equal(new URL(page.url()).pathname, '/account', 'the page stays');
      assert.match((await page.getByTestId('user').textContent()) ?? '', /^Hi, out/, 'shown signed in');
      assert.equal((await (await context.request.get(t.url + '/api/session')).json()).authenticated, true, 'and signed in it is');
      outage.end();
      await page.getByTestId('logout-failed').getByRole('button', { name: 'Try again' }).click();
      await page.waitForURL(`${t.url}/`);
      await page.getByRole('link', { name: 'Log in' }).first().waitFor();
      assert.equal((await (await context.request.get(t.url + '/api/session')).json()).authenticated, false, 'logged out now');
      assert.deepEqual(errors.filter((e) => !e.includes('status of 503')), []);
    } finally {
      outage.end();
      await context.close();
    }
  });
});

describe('shop in Chromium: the cart at Place order', () => {
  it('guest when the cart changes in another tab after the review then Place order places nothing, the review shows the cart as it is now and says why; placing it then orders that cart', async () => {
    const { context, page, errors } = await newPage();
    try {
      await guestAtReview(page);
      const other = await context.newPage();
      await other.goto(t.url + '/products/trail-runner');
      await other.fill('#qty', '5');
      await other.getByTestId('add-to-cart').click();
      await waitForCount(other, '6');
      const confirm = page.waitForRequest((r) => new URL(r.url()).pathname === '/api/checkout/confirm');
      await page.getByTestId('place-order').click();
      const { runId } = (await confirm).postDataJSON() as { runId: string };
      await page.locator('#step-error').filter({ hasText: 'Your cart changed since this review (in another tab or device?), so no order was placed.' }).waitFor();
      await page.getByTestId('place-order').filter({ hasText: 'Place order · $609.00' }).waitFor();
      assert.match((await page.locator('#checkout tbody').textContent()) ?? '', /Trail Runner Shoes5\$595\.00/, 'the review lists what the cart holds now');
      assert.equal(await page.getByTestId('order-placed').count(), 0);
      assert.equal(await t.shop.db.findOrderByKey(`guest-checkout:${runId}`), null, 'nothing ordered');
      await page.getByTestId('place-order').click();
      await page.getByTestId('order-placed').waitFor();
      assert.equal(await page.getByTestId('order-total').textContent(), '$609.00');
      const order = await t.shop.db.findOrderByKey(`guest-checkout:${runId}`);
      assert.deepEqual(order?.items.map((i) => [i.productId, i.quantity]), [['camp-mug', 1], ['trail-runner', 5]]);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('shopper when switching the currency on the review and on the orders page then both show the prices in it at once', async () => {
    const { context, page, errors } = await newPage();
    try {
      await guestAtReview(page);
      await page.selectOption('#currency', 'GBP');
      await page.getByTestId('place-order').filter({ hasText: 'Place order · £11.06' }).waitFor();
      assert.match((await page.locator('#checkout tbody').textContent()) ?? '', /Enamel Camp Mug1£11\.06/);
      assert.equal(await page.locator('#currency').inputValue(), 'GBP');
      await page.getByTestId('place-order').click();
      await page.getByTestId('order-total').filter({ hasText: '£11.06' }).waitFor();
      await page.goto(t.url + '/orders');
      await page.getByTestId('order').filter({ hasText: '£11.06' }).waitFor();
      await page.selectOption('#currency', 'EUR');
      await page.getByTestId('order').filter({ hasText: '€12.88' }).waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: a step posted while another device places the order', () => {
  it('shopper when changing the address on one device while the other places the order then the page says so in words, keeps the input, and shows the new checkout and the emptied cart once placed', async () => {
    const { context, page, errors } = await newPage();
    const order = holdOrders();
    try {
      const { username, other } = await accountWithMug('completing');
      await other.post('/api/checkout/shipping', ADA_SHIPPING);
      await other.post('/api/checkout/payment', { cardNumber: '4242 4242 4242 4242', expiry: '12/39' });
      await loginInPage(page, username, 'correct horse battery', t.url, '/checkout');
      await page.getByTestId('place-order').waitFor();
      await waitForCount(page, '1');
      await page.getByRole('button', { name: 'Change address' }).click();
      await page.getByLabel('City').fill('Paris');

      // The order is held inside its placing, after the run was taken and before it ends.
      order.hold();
      const placing = other.post('/api/checkout/confirm', {});
      await order.reached;
      await page.getByRole('button', { name: 'Continue to payment' }).click();
      await page.locator('#step-error').filter({ hasText: 'Your order is being placed in another tab or on another device, so this change was not saved.' }).waitFor();
      assert.equal(await page.getByLabel('City').inputValue(), 'Paris', 'what was typed stays');
      order.release();
      assert.equal((await placing).status, 201);
      await page.locator('#step-error').filter({ hasText: 'Your order was placed in another tab or on another device: it is under Orders.' }).waitFor();
      await page.locator('form[data-step=shipping]').waitFor();
      await waitForCount(page, '0');
      assert.deepEqual(errors.filter((e) => !/status of 409/.test(e)), []);
    } finally {
      order.restore();
      await context.close();
    }
  });
});

describe('shop in Chromium: a guest\'s step posted in another tab while the order is placed', () => {
  it('guest when changing the email in a second tab while the first places the order then that tab says the order was placed and is under Orders, and shows the new checkout and the emptied cart', async () => {
    const { context, page, errors } = await newPage();
    const order = holdOrders();
    try {
      await guestAtReview(page);
      const second = await context.newPage();
      await second.goto(t.url + '/checkout');
      await second.getByRole('button', { name: 'Change email' }).click();
      await second.getByLabel('Email').fill('grace@example.org');

      order.hold();
      await page.getByTestId('place-order').click();
      await order.reached;
      // Sent while the order is being placed: it waits for the session, which the order holds.
      await second.getByRole('button', { name: 'Continue to shipping' }).click();
      await page.waitForTimeout(200);
      order.release();
      await page.getByTestId('order-placed').waitFor();
      await second.locator('#step-error').filter({ hasText: 'Your order was placed in another tab or on another device: it is under Orders. This is a new checkout.' }).waitFor();
      await second.locator('form[data-step=contact]').waitFor();
      await waitForCount(second, '0');
      assert.equal(await second.getByLabel('Email').inputValue(), '', 'the new checkout, not the one the order ended');
      assert.deepEqual(errors.filter((e) => !/status of 409/.test(e)), []);
    } finally {
      order.restore();
      await context.close();
    }
  });
});

describe('shop in Chromium: Place order whose answer is lost', () => {
  it('guest when the order is placed but its answer never arrives then the page loaded again says the order was placed and where it is, over the new checkout', async () => {
    const { context, page, errors } = await newPage();
    try {
      await guestAtReview(page);
      // The request reaches the shop, which places the order; its answer is lost on the way back.
      let runId = '';
      await page.route('**/api/checkout/confirm', async (route) => {
        runId = (route.request().postDataJSON() as { runId: string }).runId;
        await route.fetch();
        await route.abort('connectionreset');
      });
      await page.getByTestId('place-order').click();
      await page.locator('#step-error').filter({ hasText: 'Something went wrong. Check your connection and try again.' }).waitFor();
      const order = await t.shop.db.findOrderByKey(`guest-checkout:${runId}`);
      assert.ok(order, 'the order was placed');
      await page.unroute('**/api/checkout/confirm');
      await page.reload();
      await page.locator('form[data-step=contact]').waitFor();
      await page.getByTestId('last-order').filter({ hasText: `Your order ${order.id} ($14.00) was placed at ` }).waitFor();
      await waitForCount(page, '0');
      await page.getByTestId('last-order').getByRole('link', { name: 'Orders' }).click();
      await page.getByTestId('order').filter({ hasText: `Order ${order.id}` }).waitFor();
      // Once the next checkout begins, the note has said its part.
      await page.goto(t.url + '/checkout');
      await page.getByLabel('Email').fill('ada@example.org');
      await page.getByRole('button', { name: 'Continue to shipping' }).click();
      await page.locator('form[data-step=shipping]').waitFor();
      assert.equal(await page.getByTestId('last-order').count(), 0);
      assert.deepEqual(errors.filter((e) => !e.includes('ERR_CONNECTION_RESET') && !e.includes('Failed to fetch')), []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: a checkout step after being signed out elsewhere', () => {
  it('shopper when signed out from another device while filling in the payment then sending it shows the guest checkout and says in words that the account\'s checkout waits for a login; at the review, the page does so at once', async () => {
    const { context, page, errors } = await newPage();
    try {
      const { username, other } = await accountWithMug('signedout');
      await other.post('/api/checkout/shipping', ADA_SHIPPING);
      await loginInPage(page, username, 'correct horse battery', t.url, '/checkout');
      await page.getByLabel('Card number').fill('4242 4242 4242 4242');
      assert.equal((await other.request('DELETE', '/api/me/sessions/others')).status, 200);
      await page.getByTestId('signed-out').waitFor();
      await page.getByLabel('Expiry (MM/YY)').fill('12/37');
      await page.getByRole('button', { name: 'Review order' }).click();
      await page.locator('form[data-step=contact]').waitFor();
      await page.locator('#step-error').filter({ hasText: 'You are no longer signed in, so this is a guest checkout. Log in again to go on with the checkout saved to your account.' }).waitFor();

      // Signed out again while the review shows: not a review of an empty cart over the account's address.
      await other.post('/api/checkout/payment', { cardNumber: '4242 4242 4242 4242', expiry: '12/39' });
      await page.getByTestId('signed-out').getByRole('link', { name: 'Log in again' }).click();
      await loginInPage(page, username, 'correct horse battery');
      await page.getByTestId('place-order').filter({ hasText: 'Place order · $14.00' }).waitFor();
      assert.equal((await other.request('DELETE', '/api/me/sessions/others')).status, 200);
      await page.locator('form[data-step=contact]').waitFor();
      await page.locator('#step-error').filter({ hasText: 'You are no longer signed in, so this is a guest checkout.' }).waitFor();
      assert.equal(await page.getByTestId('review-shipping').count(), 0);
      assert.deepEqual(errors.filter((e) => !/status of 409/.test(e)), []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: a checkout not begun when another account signs in', () => {
  it('shopper when another account signs in in a second tab before the first step is sent then that step is not saved to either account, and the page says whose checkout it shows now', async () => {
    const { context, page, errors } = await newPage();
    try {
      const { username: ada } = await accountWithMug('ada');
      const { username: bob, other: bobDevice } = await accountWithMug('bob');
      const bobShipping = { ...ADA_SHIPPING, name: 'Bob Example', city: 'Leeds' };
      await bobDevice.post('/api/checkout/shipping', bobShipping);
      await loginInPage(page, ada, 'correct horse battery', t.url, '/checkout');
      await page.locator('form[data-step=shipping]').waitFor();
      await fillShipping(page);

      const second = await context.newPage();
      await loginInPage(second, bob, 'correct horse battery', t.url, '/');
      await waitForCount(second, '1');
      await page.getByRole('button', { name: 'Continue to payment' }).click();
      await page.locator('#step-error').filter({ hasText: `You are signed in as ${bob} now (in another tab?), so this is that account's checkout; what you typed here was not saved, and the checkout of ${ada} stays with that account.` }).waitFor();
      // Bob's checkout, at its own next step, with his address.
      await page.locator('form[data-step=payment]').waitFor();
      const bobs = (await bobDevice.get('/api/checkout')).body as { step: string; data: { shipping: unknown } };
      assert.equal(bobs.step, 'payment');
      assert.deepEqual(bobs.data.shipping, bobShipping);
      const adaDevice = new ShopClient(t.url);
      await adaDevice.login(ada);
      assert.equal((await adaDevice.get('/api/checkout')).body.runId, null, 'ada\'s checkout was not begun with it either');
      assert.deepEqual(errors.filter((e) => !/status of 409/.test(e)), []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: a page shown again', () => {
  it('cart and account pages when shown again after another device changed the cart and the preferences and signed in then show the cart, the count, the currency, the theme and the sessions as they are now', async () => {
    const { context, page, errors } = await newPage();
    try {
      const { username, other } = await accountWithMug('shown');
      await loginInPage(page, username, 'correct horse battery', t.url, '/cart');
      await page.getByTestId('cart-total').filter({ hasText: '$14.00' }).waitFor();
      const account = await context.newPage();
      await account.goto(t.url + '/account');
      await account.getByTestId('session-count').filter({ hasText: '2 active sessions' }).waitFor();
      await other.add('trail-runner', 2);
      assert.equal((await other.request('PUT', '/api/preferences', { json: { currency: 'EUR', theme: 'dark' } })).status, 200);
      assert.equal((await new ShopClient(t.url).login(username)).status, 200);
      // Headless Chromium never hides a page: the event a tab brought to the front fires.
      for (const p of [page, account]) await p.locator('html').evaluate((e) => e.ownerDocument.dispatchEvent(new Event('visibilitychange')));
      await waitForCount(page, '3');
      assert.equal(await page.getByTestId('cart-line').count(), 2);
      assert.match((await page.getByTestId('cart-total').textContent()) ?? '', /€/);
      assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
      await account.getByTestId('session-count').filter({ hasText: '3 active sessions' }).waitFor();
      assert.equal(await account.locator('#pref-currency').inputValue(), 'EUR');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: an account\'s pages signed out from elsewhere', () => {
  it('orders, account and cart pages when their session is signed out from another device then stop showing the orders, the sessions and the forms, say the saved cart is not shown (not that it is empty), and offer to log in again', async () => {
    const { context, page, errors } = await newPage();
    try {
      const { username, other } = await accountWithMug('pages');
      await other.post('/api/checkout/shipping', ADA_SHIPPING);
      await other.post('/api/checkout/payment', { cardNumber: '4242 4242 4242 4242', expiry: '12/39' });
      assert.equal((await other.post('/api/checkout/confirm', {})).status, 201);
      await loginInPage(page, username, 'correct horse battery', t.url, '/orders');
      await page.getByTestId('order').waitFor();
      await other.add('camp-mug', 2);
      const account = await context.newPage();
      await account.goto(t.url + '/account');
      await account.getByTestId('session-row').nth(1).waitFor();
      const cart = await context.newPage();
      await cart.goto(t.url + '/cart');
      await cart.getByTestId('cart-line').waitFor();
      assert.equal((await other.request('DELETE', '/api/me/sessions/others')).status, 200);
      for (const [p, what] of [[page, 'your order history'], [account, 'your account'], [cart, 'your saved cart']] as const) {
        await p.getByTestId('signed-out-panel').filter({ hasText: `You are signed out, so ${what} no longer shows here.` }).waitFor();
        assert.equal(await p.locator('#main').getByText('Ada Lovelace').count(), 0);
        assert.equal(await p.getByTestId('session-row').count(), 0);
        assert.equal(await p.getByTestId('password-form').count(), 0);
      }
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: checkout buttons while their request is on its way', () => {
  it('guest when Place order is waiting for its answer then Back and the Change buttons are disabled with it, and the placed order is shown with no refusal', async () => {
    const { context, page, errors } = await newPage();
    const order = holdOrders();
    try {
      await guestAtReview(page);
      order.hold();
      await page.getByTestId('place-order').click();
      await order.reached;
      for (const name of ['Back', 'Change email', 'Change address', /^Place order/]) {
        assert.equal(await page.locator('[data-step=review]').getByRole('button', { name }).isDisabled(), true, `${String(name)} is disabled`);
      }
      order.release();
      await page.getByTestId('order-placed').waitFor();
      assert.equal(await page.locator('#toast').textContent(), '');
      assert.deepEqual(errors, []);
    } finally {
      order.restore();
      await context.close();
    }
  });

  it('guest when double-clicking Back on the review then goes back one step, to the payment, not two', async () => {
    const { context, page, errors } = await newPage();
    try {
      await guestAtReview(page);
      let backs = 0;
      page.on('request', (r) => {
        if (new URL(r.url()).pathname === '/api/checkout/back') backs++;
      });
      // The answer held a moment, as on a slow network: the second click comes before it.
      await page.route('**/api/checkout/back', async (route) => {
        await new Promise((r) => setTimeout(r, 300));
        await route.continue();
      });
      await page.getByTestId('back').dblclick();
      await page.locator('form[data-step=payment]').waitFor();
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(backs, 1);
      assert.equal(await page.locator('form[data-step=payment]').count(), 1);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: cart quantities', () => {
  it('cart when a quantity box is cleared or holds "-" then the line stays, the box shows its quantity again and the page says which quantities it takes', async () => {
    const { context, page, errors } = await newPage();
    try {
      await page.goto(t.url + '/products/camp-mug');
      await page.fill('#qty', '3');
      await page.getByTestId('add-to-cart').click();
      await waitForCount(page, '3');
      await page.goto(t.url + '/cart');
      const box = page.getByLabel('Quantity of Enamel Camp Mug');
      for (const typed of ['', '-']) {
        await box.fill('');
        if (typed) await box.pressSequentially(typed);
        await box.press('Tab');
        await page.locator('#toast').filter({ hasText: 'Choose a quantity from 0 to 99' }).waitFor();
        assert.equal(await box.inputValue(), '3', `after "${typed}"`);
        assert.equal(await page.getByTestId('cart-line').count(), 1, `the line stays after "${typed}"`);
        assert.equal((await (await context.request.get(t.url + '/api/cart')).json()).count, 3, `and so does its quantity, after "${typed}"`);
      }
      await box.fill('0');
      await box.press('Tab');
      await page.getByText('Your cart is empty.').waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('cart when a quantity is changed and another line removed before the first answer comes then the page and the server both end with the two changes, in that order', async () => {
    const { context, page, errors } = await newPage();
    try {
      await page.goto(t.url + '/products/camp-mug');
      await page.getByTestId('add-to-cart').click();
      await waitForCount(page, '1');
      await page.goto(t.url + '/products/trail-runner');
      await page.getByTestId('add-to-cart').click();
      await waitForCount(page, '2');
      await page.goto(t.url + '/cart');
      await page.getByTestId('cart-line').nth(1).waitFor();
      // The first change's answer is slow to come back, as on a network that delivers out of order.
      let sent = 0;
      await page.route('**/api/cart/items/**', async (route) => {
        const first = sent++ === 0;
        const response = await route.fetch();
        if (first) await new Promise((r) => setTimeout(r, 600));
        await route.fulfill({ response });
      });
      const box = page.getByLabel('Quantity of Enamel Camp Mug');
      await box.fill('4');
      await box.press('Tab');
      await page.getByRole('button', { name: 'Remove Trail Runner Shoes' }).click();
      await waitForCount(page, '4');
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(await cartCount(page), '4');
      assert.equal(await page.getByTestId('cart-line').count(), 1);
      const server = await (await context.request.get(t.url + '/api/cart')).json() as { items: { productId: string; quantity: number }[] };
      assert.deepEqual(server.items.map((i) => [i.productId, i.quantity]), [['camp-mug', 4]]);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: the catalog in a store outage', () => {
  it('product and catalog pages when the session store fails for a visitor with a session then the product page shows the product, whose own request still answers, and says the cart may not be reachable, not that the product does not exist; the cookie is kept, and the catalog still lists the products', async () => {
    const { context, page, errors } = await newPage();
    const outage = storeOutage('get');
    try {
      await page.goto(t.url + '/products/camp-mug');
      await page.getByTestId('add-to-cart').click();
      await waitForCount(page, '1');
      const cookies = await context.cookies();
      assert.equal(cookies.length, 1, 'the session cookie');
      outage.begin();
      const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/products/camp-mug');
      await page.goto(t.url + '/products/camp-mug');
      // The product's session only records the view: optional, so the product answers through the outage.
      assert.equal((await answered).status(), 200);
      await page.getByTestId('unavailable').filter({ hasText: 'The shop is temporarily unavailable. Please try again in a moment. Your cart may not be reachable until then.' }).waitFor();
      await page.getByRole('heading', { name: 'Enamel Camp Mug' }).waitFor();
      assert.equal(await page.getByTestId('price').textContent(), '$14.00');
      assert.equal(await page.getByText('Product not found').count(), 0);
      assert.deepEqual(await context.cookies(), cookies, 'the outage neither replaced nor cleared the session cookie');
      // Once the store answers again, adding to the cart works from the same page, and the notice goes.
      outage.end();
      await page.getByTestId('add-to-cart').click();
      await waitForCount(page, '2');
      await page.getByTestId('unavailable').waitFor({ state: 'detached' });
      outage.begin();
      // The list opens no session, so it answers through the outage.
      await page.goto(t.url + '/');
      await page.locator('#catalog-status').filter({ hasText: /^\d+ products$/ }).waitFor();
      assert.ok(await page.getByTestId('product-card').count() >= 20);
      outage.end();
      await page.goto(t.url + '/products/no-such-thing');
      await page.getByTestId('not-found').filter({ hasText: 'Product not found' }).waitFor();
      await page.goto(t.url + '/products/camp-mug');
      await page.getByTestId('add-to-cart').waitFor();
      assert.deepEqual(errors.filter((e) => !e.includes('status of 503')), []);
    } finally {
      outage.end();
      await context.close();
    }
  });
});

describe('shop in Chromium: the account\'s pages in a store outage', () => {
  it('cart, orders, checkout and account pages when the session store fails then say the shop is temporarily unavailable in place of "Loading…", and Try again loads them once it answers', async () => {
    const { context, page, errors } = await newPage();
    const outage = storeOutage('get');
    try {
      await registerInPage(page, t.url, 'outage');
      await page.goto(t.url + '/products/camp-mug');
      await page.getByTestId('add-to-cart').click();
      await waitForCount(page, '1');
      outage.begin();
      for (const path of ['/cart', '/orders', '/checkout', '/account']) {
        await page.goto(t.url + path);
        await page.getByTestId('unavailable').filter({ hasText: 'The shop is temporarily unavailable. Please try again in a moment.' }).waitFor();
        assert.equal(await page.getByText('Loading…').count(), 0, path);
      }
      outage.end();
      await page.getByTestId('unavailable').getByRole('link', { name: 'Try again' }).click();
      await page.getByTestId('session-row').first().waitFor();
      await page.goto(t.url + '/cart');
      await page.getByTestId('cart-line').waitFor();
      assert.deepEqual(errors.filter((e) => !e.includes('status of 503')), []);
    } finally {
      outage.end();
      await context.close();
    }
  });
});

describe('shop in Chromium: a phone\'s width', () => {
  it('account page when 360 px wide then the sessions table scrolls inside its panel and the page does not scroll sideways', async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, colorScheme: 'light' });
    context.setDefaultTimeout(15_000);
    try {
      const page = await context.newPage();
      await registerInPage(page, t.url, 'narrow');
      await page.goto(t.url + '/account');
      await page.getByTestId('session-row').first().waitFor();
      const [scrollWidth, clientWidth] = await page.locator('html').evaluate((e) => [e.scrollWidth, e.clientWidth]);
      assert.equal(scrollWidth, clientWidth, 'no sideways scrolling of the page');
      const [tableScroll, tableClient] = await page.getByTestId('sessions-table').evaluate((e) => [e.scrollWidth, e.clientWidth]);
      assert.ok(tableScroll > tableClient, `the table scrolls in its box (${tableScroll} > ${tableClient})`);
      const box = await page.getByTestId('sessions-table').boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 360, 'inside the viewport');
    } finally {
      await context.close();
    }
  });
});

describe('shop in Chromium: the admin ends their own sessions', () => {
  it('admin when ending the admin account\'s own sessions on the admin page then the result says so and that it signed them out, not "log in first"', async () => {
    const shop = await startTestShop();
    const { context, page } = await newPage();
    try {
      await adminInPage(page, shop.url);
      await page.locator('#end-user').fill('admin');
      await page.getByRole('button', { name: 'Look up' }).click();
      await page.getByTestId('user-sessions').waitFor();
      await page.getByRole('button', { name: 'End sessions' }).click();
      await page.getByTestId('user-result').filter({ hasText: 'Ended 1 session of admin. That signed you out here too: log in again to go on.' }).waitFor();
      await page.waitForTimeout(500);
      assert.equal(await page.getByTestId('user-result').textContent(), 'Ended 1 session of admin. That signed you out here too: log in again to go on.', 'not replaced');
      assert.equal((await (await context.request.get(shop.url + '/api/session')).json()).authenticated, false);
    } finally {
      await context.close();
      await shop.stop();
    }
  });
});

describe('shop in Chromium: registrations from one network', () => {
  it('register page when the address has registered SHOP_REGISTRATIONS_PER_HOUR accounts then says too many were created from the network and registers nobody', async () => {
    const shop = await startTestShop({ SHOP_REGISTRATIONS_PER_HOUR: '1' });
    const { context, page, errors } = await newPage();
    try {
      await page.goto(shop.url + '/register');
      await page.fill('#username', uniqueName('first'));
      await page.fill('#password', 'correct horse battery');
      await page.locator('form button[type=submit]').click();
      await page.getByTestId('user').waitFor();
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByRole('link', { name: 'Register' }).waitFor();
      const second = uniqueName('second');
      await page.goto(shop.url + '/register');
      await page.fill('#username', second);
      await page.fill('#password', 'correct horse battery');
      await page.locator('form button[type=submit]').click();
      await page.locator('#auth-error').filter({ hasText: 'Too many accounts were created from your network in the last hour. Try again later, or log in if you have an account already.' }).waitFor();
      assert.equal(await shop.shop.db.findUserByName(second), null);
      assert.equal(await page.getByTestId('user').count(), 0);
      assert.deepEqual(errors.filter((e) => !e.includes('status of 429')), []);
    } finally {
      await context.close();
      await shop.stop();
    }
  });
});

describe('shop in Chromium: new sessions from one network', () => {
  it('register page when the session it needs is refused by SHOP_NEW_SESSIONS_PER_MINUTE then says there were too many visits, not too many accounts, and registers nobody', async () => {
    const shop = await startTestShop({ SHOP_NEW_SESSIONS_PER_MINUTE: '1' });
    const { context, page, errors } = await newPage();
    try {
      const loaded = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/session');
      await page.goto(shop.url + '/register');
      // The page's session took the address's one new session; with its cookie gone, the form needs another.
      assert.equal((await loaded).status(), 200);
      await context.clearCookies();
      const name = uniqueName('visitor');
      await page.fill('#username', name);
      await page.fill('#password', 'correct horse battery');
      await page.locator('form button[type=submit]').click();
      await page.locator('#auth-error').filter({ hasText: 'Too many visits from your network right now. Try again in a minute.' }).waitFor();
      assert.equal(await shop.shop.db.findUserByName(name), null);
      assert.deepEqual(errors.filter((e) => !e.includes('status of 429') && !e.includes('status of 403')), []);
    } finally {
      await context.close();
      await shop.stop();
    }
  });
});

describe('shop in Chromium: the admin page signed out', () => {
  it('admin page when signed out in another tab then says it is signed out in place of the figures, the users and the tools, and stops asking for the figures', async () => {
    const { context, page, errors } = await newPage();
    try {
      await adminInPage(page, t.url);
      await page.getByTestId('node-row').waitFor();
      await page.locator('#end-all').waitFor();
      const other = await context.newPage();
      await other.goto(t.url + '/');
      await other.getByRole('button', { name: 'Log out' }).click();
      await other.getByRole('link', { name: 'Log in' }).waitFor();
      await page.getByTestId('signed-out-panel').filter({ hasText: 'You are signed out, so the admin page no longer shows here.' }).waitFor();
      for (const gone of ['[data-testid=node-row]', '[data-testid=user-row]', '#manage-user', '#end-all', '[data-testid=admin-error]']) {
        assert.equal(await page.locator(gone).count(), 0, gone);
      }
      let asked = 0;
      page.on('request', (r) => void (new URL(r.url()).pathname === '/api/admin/overview' && asked++));
      await page.waitForTimeout(5_500);
      assert.equal(asked, 0, 'the figures are no longer asked for');
      assert.equal(await page.getByTestId('signed-out-panel').count(), 1);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('admin page without a live channel when its session ends then, at the next refresh of the figures, says it is signed out in their place', async () => {
    const shop = await startTestShop({ SHOP_LIVE_MAX_SOCKETS: '0' });
    const { context, page, errors } = await newPage();
    try {
      await adminInPage(page, shop.url);
      await page.getByTestId('node-row').waitFor();
      const admin = new ShopClient(shop.url);
      assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
      assert.equal((await admin.post('/api/admin/users/admin/sessions/end')).status, 200);
      await page.getByTestId('signed-out-panel').filter({ hasText: 'You are signed out, so the admin page no longer shows here.' }).waitFor();
      assert.equal(await page.getByTestId('node-row').count(), 0);
      assert.equal(await page.getByTestId('admin-error').count(), 0, 'not "the figures could not be loaded"');
      await page.getByRole('link', { name: 'Log in', exact: true }).waitFor();
      // The page tries the live channel, which this shop does not offer (404).
      assert.deepEqual(errors.filter((e) => !e.includes('status of 401') && !e.includes('/api/live')), []);
    } finally {
      await context.close();
      await shop.stop();
    }
  });
});
