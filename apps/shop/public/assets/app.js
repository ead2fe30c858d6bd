// Shared by every page: the API client (CSRF token, JSON errors), the session state, the header
// (cart badge, theme, currency, account) and small DOM helpers. Data is only ever put in the page as
// text, never as markup.

const RATES = { USD: 1, EUR: 0.92, GBP: 0.79 };
const SESSION_HINT = 'tether.session';

export const state = { session: null };
const listeners = new Set();

export class ApiError extends Error {
  /** `reason`: which of the shop's limits answered 429 RATE_LIMITED (`error.reason`), else undefined. */
  constructor(status, code, message, reason) {
    super(message);
    this.status = status;
    this.code = code;
    this.reason = reason;
  }
}

/** Element builder: `el('a', { href: '/', class: 'x' }, 'text', child)`; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

function hasSessionHint() {
  try { return localStorage.getItem(SESSION_HINT) === '1'; } catch { return false; }
}
function setSessionHint(on) {
  try {
    if (on) localStorage.setItem(SESSION_HINT, '1');
    else localStorage.removeItem(SESSION_HINT);
  } catch { /* storage blocked */ }
}

async function request(method, path, body) {
  const headers = { accept: 'application/json' };
  const unsafe = method !== 'GET' && method !== 'HEAD';
  if (unsafe && state.session) headers['x-csrf-token'] = state.session.csrfToken;
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const left = res.headers.get('x-session-expires-in');
  if (left !== null && /^\d+$/.test(left)) idleDeadline(Date.now() + Number(left));
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data?.error?.code ?? 'HTTP_' + res.status, data?.error?.message ?? res.statusText, data?.error?.reason);
  return data;
}

/** Calls the API; an unsafe call first makes sure a session (and its CSRF token) exists, and retries
 *  once with a fresh token when the one held went stale (a login in another tab regenerates it). */
export async function api(method, path, body) {
  const unsafe = method !== 'GET' && method !== 'HEAD';
  if (unsafe && !state.session) await loadSession({ create: true });
  try {
    return await request(method, path, body);
  } catch (err) {
    if (!(unsafe && err instanceof ApiError && err.code === 'CSRF_TOKEN_INVALID')) throw err;
    await loadSession({ create: true });
    return request(method, path, body);
  }
}

/** Loads the session summary. Without `create`, a visitor who never had a session gets none: browsing
 *  the catalog must not create sessions. */
export async function loadSession({ create = false } = {}) {
  if (!create && !hasSessionHint()) {
    notify();
    return null;
  }
  setSession(await request('GET', '/api/session'));
  return state.session;
}

export function setSession(view) {
  state.session = view;
  if (view) {
    setSessionHint(true);
    applyTheme(view.preferences.theme);
  }
  // The deadline came with the answer, before the view that says whether and when to warn; notify() renders.
  idleDeadline(idleAt, false);
  notify();
}

export function setCart(cart) {
  if (state.session) state.session.cart = cart;
  notify();
}

export function onChange(fn) {
  listeners.add(fn);
}
function notify() {
  syncLive();
  renderHeader();
  for (const fn of listeners) fn(state.session);
}

// The live channel: while signed in, a WebSocket the server closes (4001) the moment this session ends
// (a logout in another tab, "log out everywhere" from another device, a timeout), so the page says so
// at once instead of failing at the next click. The server sends nothing else; the page sends nothing.
let live = null;
let liveFailures = 0;
/** No new socket before this time (ms): after a refused or dropped one, waits double up to 30 s. */
let liveNotBefore = 0;
let liveTimer = null;
/** Why this page was signed out by someone else, to say so: `ended` (a logout elsewhere…), `idle` (the idle timeout); false: it was not. */
let signedOutNotice = false;
/** Set while this page ends its own session (a logout, deleting the account): that close is no news. */
let leaving = false;
/** Why this page's last logout failed (the user is still signed in), to say so; null: it did not. */
let logoutFailure = null;

/**
 * Runs `send`, a request that ends this session on purpose, so that the live channel's close it causes
 * does not tell the user what they just did. On failure the session goes on, and so does the channel.
 */
export async function ending(send) {
  leaving = true;
  try {
    return await send();
  } catch (err) {
    leaving = false;
    if (live === null) syncLive();
    throw err;
  }
}

function syncLive() {
  const wanted = state.session?.authenticated === true && typeof WebSocket === 'function';
  if (wanted && live === null) {
    const wait = liveNotBefore - Date.now();
    if (wait <= 0) openLive();
    else liveTimer ??= setTimeout(() => {
      liveTimer = null;
      syncLive();
    }, wait);
  } else if (!wanted && live !== null) {
    const ws = live;
    live = null;
    ws.close(1000);
  }
}

function openLive() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/live`);
  live = ws;
  let opened = false;
  ws.addEventListener('open', () => {
    opened = true;
    liveFailures = 0;
  });
  ws.addEventListener('close', (event) => {
    if (live !== ws) return; // closed here, on purpose
    live = null;
    if (leaving && event.code === 4001) return;
    // Refused at the handshake, or dropped (a restart, a drain, the network): the next one waits.
    if (event.code !== 4001) backOff();
    // Ended (4001), or refused (no longer signed in?): ask what this browser is now.
    if (event.code === 4001 || !opened) void sessionChanged(event.reason);
    else syncLive();
  });
}

function backOff() {
  liveNotBefore = Date.now() + Math.min(30_000, 1000 * 2 ** liveFailures++);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The live channel closed: signed in again in another tab (a new cookie), or signed out. `regenerated`
 * means a login in this browser replaced the session, and its answer, with the new cookie, may still be
 * on its way: the page asks again for a few seconds before it takes itself for signed out.
 */
async function sessionChanged(reason) {
  let view = null;
  for (const wait of reason === 'regenerated' ? [0, 250, 500, 1000, 2000] : [0]) {
    await sleep(wait);
    try {
      view = await request('GET', '/api/session');
    } catch {
      // The server is unreachable: the channel again later, the session as it was.
      backOff();
      syncLive();
      return;
    }
    if (view?.authenticated) break;
  }
  if (!view?.authenticated && state.session?.authenticated) signedOutNotice = reason === 'expired' ? 'idle' : 'ended';
  setSession(view);
}

// The idle timeout, ahead of time (WCAG 2.2.1): every API answer to a signed-in session says how long
// the session has left (X-Session-Expires-In). SHOP_IDLE_WARNING seconds before the end, the page asks
// again (another tab may have been busy meanwhile; asking is not activity and moves nothing) and, if the
// end is still that near, says when it comes, with a button that keeps the session.
let idleAt = 0;
let idleTimer = null;
/** The time the warning shows (the session's end), or null: no warning. */
let idleWarning = null;

/** `render`: false when the caller renders the header anyway. */
function idleDeadline(at, render = true) {
  idleAt = at;
  clearTimeout(idleTimer);
  idleTimer = null;
  const lead = (state.session?.idleWarningSeconds ?? 0) * 1000;
  let showing = null;
  if (lead > 0 && at > 0 && state.session?.authenticated === true) {
    const wait = at - lead - Date.now();
    // Timers take at most 2^31 − 1 ms (24.8 days; a kept-signed-in session may last longer): asked again then.
    if (wait > 0) idleTimer = setTimeout(checkIdle, Math.min(wait, 2 ** 31 - 1));
    else {
      showing = at;
      // Past the end (a second after it, for the server's own clock), ask again: signed out by then, the
      // page says so even without its live channel.
      idleTimer = setTimeout(checkIdle, Math.max(0, at - Date.now()) + 1000);
    }
  }
  if (showing !== idleWarning) {
    idleWarning = showing;
    if (render) renderHeader();
  }
}

async function checkIdle() {
  idleTimer = null;
  let answer;
  try {
    // A signed-in answer's header sets the deadline again, and with it the warning.
    answer = await request('GET', '/api/session/deadline');
  } catch {
    idleTimer = setTimeout(checkIdle, 5000);
    return;
  }
  if (!answer?.authenticated && state.session?.authenticated) void sessionChanged('expired');
}

async function stayIn() {
  try {
    await api('POST', '/api/session/keepalive');
  } catch (err) {
    toast(describeError(err));
  }
}

export function currency() {
  return state.session?.preferences.currency ?? 'USD';
}

export function formatPrice(usd, cur = currency()) {
  return new Intl.NumberFormat(undefined, { style: 'currency', currency: cur }).format(usd * (RATES[cur] ?? 1));
}

function applyTheme(theme) {
  document.documentElement.setAttribute('data-theme', theme);
  try { localStorage.setItem('tether.theme', theme); } catch { /* storage blocked */ }
}

export async function setPreferences(change) {
  const res = await api('PUT', '/api/preferences', change);
  if (state.session) state.session.preferences = res.preferences;
  applyTheme(res.preferences.theme);
  notify();
}

export async function addToCart(productId, quantity = 1) {
  const cart = await api('POST', '/api/cart/items', { productId, quantity });
  setCart(cart);
  return cart;
}

/**
 * Logs out. A logout the server did not answer with success (the store down, the network gone) may have
 * ended nothing: the page goes on showing the user signed in and says the logout failed, so that nobody
 * leaves a shared computer believing they are signed out. Resolves with whether it logged out.
 */
export async function logout() {
  logoutFailure = null;
  renderHeader();
  try {
    await ending(() => api('POST', '/api/auth/logout'));
  } catch (err) {
    logoutFailure = describeError(err);
    renderHeader();
    return false;
  }
  signedOut();
  return true;
}

/** After a logout or an account deletion: forgets the session here and goes to the home page. */
export function signedOut() {
  setSessionHint(false);
  live?.close(1000);
  live = null;
  state.session = null;
  location.assign('/');
}

/**
 * A same-site path from `?next=`, or the fallback: never an open redirect. The value is resolved the
 * way the browser will resolve it (which drops tabs and line breaks, so `/\t/evil.example` is
 * `//evil.example`), and only a result on this origin is kept.
 */
export function safeNext(fallback = '/') {
  const next = new URLSearchParams(location.search).get('next');
  if (!next || !next.startsWith('/')) return fallback;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return fallback;
  }
  // The whole URL, not its path: a path the parser made from dot segments (`/.//evil.example`) can begin
  // with `//`, which location.assign would read as another host. Such a path names no page here either.
  return url.origin === location.origin && !url.pathname.startsWith('//') ? url.href : fallback;
}

/** Sends the visitor to the login page, which comes back here after it. */
export function sendToLogin() {
  location.replace('/login?next=' + encodeURIComponent(location.pathname));
}

/**
 * What a page of an account's own data (its orders, its sessions) shows in place of that data once the
 * session is signed out from elsewhere: on a shared computer, that is why someone signs out everywhere.
 */
export function signedOutPanel(what) {
  return el('div', { class: 'empty panel', 'data-testid': 'signed-out-panel' },
    el('p', {}, `You are signed out, so ${what} no longer shows here.`),
    el('a', { class: 'button primary', href: '/login?next=' + encodeURIComponent(location.pathname) }, 'Log in again'));
}

/** For pages that need an account: loads the session and sends visitors to the login page. */
export async function requireLogin() {
  const s = await loadSession({ create: true });
  if (!s?.authenticated) {
    sendToLogin();
    return null;
  }
  return s;
}

let toastTimer;
/**
 * Asks for the password again (a dialog) when the server answers REAUTH_REQUIRED (a sign-in long ago);
 * resolves with it, or null when cancelled.
 */
export function askPassword(why) {
  return new Promise((resolve) => {
    const input = el('input', { type: 'password', autocomplete: 'current-password', required: true, maxlength: '128', id: 'reauth-password' });
    const dialog = el('dialog', { 'data-testid': 'reauth' },
      el('form', { method: 'dialog', class: 'form' },
        el('p', {}, why),
        el('label', {}, 'Password', input),
        el('div', { class: 'actions' },
          el('button', { type: 'submit', class: 'primary', value: 'ok' }, 'Confirm'),
          el('button', { type: 'button', onclick: () => dialog.close('') }, 'Cancel'))));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'ok' && input.value ? input.value : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function toast(message) {
  const t = document.getElementById('toast');
  if (!t) return;
  t.textContent = message;
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), 2500);
}

export function describeError(err) {
  if (err instanceof ApiError) return err.message;
  return 'Something went wrong. Check your connection and try again.';
}

/** What a page says when the server failed (5xx) or could not be reached: the shop is not at fault for a 4xx. */
export const UNAVAILABLE = 'The shop is temporarily unavailable. Please try again in a moment.';

/** Whether `err` is the server's failure (5xx) or the network's, rather than an answer about the request. */
export function isUnavailable(err) {
  return !(err instanceof ApiError) || err.status >= 500;
}

/**
 * A page whose content could not be loaded (the session store down answers 503) says so in its place,
 * with a way to try again: a toast would be gone in seconds, leaving "Loading…" for good.
 */
export function loadFailed(host, err) {
  host.replaceChildren(el('div', { class: 'empty panel', role: 'alert', 'data-testid': 'unavailable' },
    el('p', {}, isUnavailable(err) ? UNAVAILABLE : describeError(err)),
    el('a', { class: 'button primary', href: location.pathname + location.search }, 'Try again')));
}

const LOGO = '<svg viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="currentColor"/><path class="logo-mark" d="M9 11h14M16 11v12" stroke-width="3.2" stroke-linecap="round"/><circle class="logo-dot" cx="16" cy="23" r="2.6"/></svg>';
const CART_ICON = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M3 4h2l2.4 11.2a2 2 0 0 0 2 1.6h7.7a2 2 0 0 0 2-1.5L21 8H6"/><circle cx="10" cy="20" r="1.3"/><circle cx="17" cy="20" r="1.3"/></svg>';
const MOON = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M20 14.5A8 8 0 0 1 9.5 4 8 8 0 1 0 20 14.5z"/></svg>';
const SUN = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true"><circle cx="12" cy="12" r="4"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/></svg>';

function svg(markup) {
  const span = el('span');
  span.innerHTML = markup; // fixed markup from this file only
  return span.firstChild;
}

function keyOf(node) {
  return node.id || node.getAttribute('data-testid') || node.getAttribute('href') || node.textContent;
}

export function renderHeader() {
  const host = document.getElementById('site-header');
  if (!host) return;
  const s = state.session;
  const here = location.pathname;
  const link = (href, text) => el('a', { href, 'aria-current': here === href ? 'page' : undefined }, text);
  const nav = el('nav', { class: 'nav', 'aria-label': 'Main' }, link('/', 'Shop'));
  if (s?.authenticated) nav.append(link('/orders', 'Orders'), link('/account', 'Account'));
  else if (s?.guestOrders > 0) nav.append(link('/orders', 'Orders'));
  if (s?.user?.username === 'admin') nav.append(link('/admin', 'Admin'));

  const dark = document.documentElement.getAttribute('data-theme') === 'dark';
  const themeButton = el('button', {
    class: 'icon-button', type: 'button', 'aria-pressed': String(dark), 'aria-label': 'Dark theme', title: 'Dark theme', 'data-testid': 'theme-toggle',
    onclick: () => setPreferences({ theme: dark ? 'light' : 'dark' }).catch((e) => toast(describeError(e))),
  }, svg(dark ? SUN : MOON));

  const currencySelect = el('select', {
    id: 'currency', 'aria-label': 'Currency',
    onchange: (e) => setPreferences({ currency: e.target.value }).catch((err) => toast(describeError(err))),
  }, ...Object.keys(RATES).map((c) => el('option', { value: c, selected: c === currency() }, c)));

  const account = s?.authenticated
    ? [el('span', { class: 'user-chip', 'data-testid': 'user' }, 'Hi, ', s.user.username), el('button', { type: 'button', class: 'link', onclick: () => logout() }, 'Log out')]
    : [el('a', { href: '/login?next=' + encodeURIComponent(here === '/login' || here === '/register' ? '/' : here) }, 'Log in'), el('a', { href: '/register' }, 'Register')];

  const count = s?.cart?.count ?? 0;
  const cart = el('a', { href: '/cart', class: 'cart-link', 'aria-label': `Cart, ${count} item${count === 1 ? '' : 's'}` },
    svg(CART_ICON), el('span', { 'aria-hidden': 'true' }, 'Cart'), el('span', { class: 'badge', 'data-testid': 'cart-count', 'aria-hidden': 'true' }, String(count)));

  const brand = el('a', { href: '/', class: 'brand' }, svg(LOGO), 'Tether Supply Co.');

  // Re-rendering must not throw a keyboard user's focus back to the top of the page.
  const focusedKey = host.contains(document.activeElement) ? keyOf(document.activeElement) : null;
  const notice = signedOutNotice && !s?.authenticated
    ? el('p', { class: 'signed-out', role: 'status', 'data-testid': 'signed-out' },
      signedOutNotice === 'idle' ? 'You were signed out after a period of inactivity. ' : 'You were signed out on this device. ',
      el('a', { href: '/login?next=' + encodeURIComponent(here === '/login' || here === '/register' ? '/' : here) }, 'Log in again'))
    : null;
  const warning = idleWarning !== null && s?.authenticated
    ? el('p', { class: 'signed-out', role: 'alert', 'data-testid': 'idle-warning' },
      `For your security you will be signed out at ${new Date(idleWarning).toLocaleTimeString()} after a period of inactivity. `,
      el('button', { type: 'button', class: 'primary', onclick: () => stayIn() }, 'Stay signed in'))
    : null;
  const failedLogout = logoutFailure !== null && s?.authenticated
    ? el('p', { class: 'signed-out', role: 'alert', 'data-testid': 'logout-failed' },
      `Logging out failed (${logoutFailure}): you are still signed in. `,
      el('button', { type: 'button', class: 'primary', onclick: () => logout() }, 'Try again'))
    : null;
  host.replaceChildren(el('div', { class: 'bar' }, brand, nav, el('div', { class: 'tools' }, currencySelect, themeButton, ...account, cart)),
    ...(notice ? [notice] : []), ...(warning ? [warning] : []), ...(failedLogout ? [failedLogout] : []));
  if (focusedKey) [...host.querySelectorAll('a, button, select')].find((n) => keyOf(n) === focusedKey)?.focus();
}

// A page left open in a background tab, or on a device put aside, shows the cart, the preferences and
// the sign-in as they were when it loaded, while another tab or device changed them: shown again, it
// asks again (the live channel tells only of the session's end).
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.session) loadSession().catch(() => {});
});

// Pages with no script of their own (404) just show the header.
if (document.querySelector('script[data-init-header]')) loadSession().catch(() => renderHeader());
