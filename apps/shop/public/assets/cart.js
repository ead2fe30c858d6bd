// The cart: change quantities, remove lines, go to checkout (logged in, after logging in, or as a guest).
import { api, ApiError, describeError, el, formatPrice, loadFailed, loadSession, onChange, setCart, signedOutPanel, state, toast } from './app.js';
import { artFor } from './art.js';
import { loadProducts } from './catalog.js';

let products = [];
let anonymousCart = { items: [], count: 0, total: 0 };
/** The user whose saved cart the page loaded with; null: a visitor's. */
let owner = null;

function cart() {
  return state.session?.cart ?? anonymousCart;
}

/** The changes made on this page, one after another: see change(). */
let changes = Promise.resolve();

/**
 * Sends one change of the cart. Changes go one at a time, in the order they were made: sent together,
 * the server could apply them in another order, and the page would show whichever answer came last (a
 * line removed coming back with a quantity changed just before).
 */
function change(method, productId, body) {
  changes = changes.then(async () => {
    try {
      setCart(await api(method, `/api/cart/items/${encodeURIComponent(productId)}`, body));
    } catch (err) {
      toast(describeError(err));
    }
  });
  return changes;
}

function lineView(item) {
  const p = products.find((x) => x.id === item.productId) ?? { hue: 0, category: '' };
  const qty = el('input', {
    type: 'number', min: '0', max: '99', value: String(item.quantity), 'aria-label': `Quantity of ${item.name}`, inputmode: 'numeric',
    onchange: (e) => {
      // Digits only: a box left empty, or holding what is not a number ("-", which the browser reports as
      // ''), is no quantity, and certainly not 0, which would remove the line.
      const typed = e.target.value.trim();
      const n = /^\d+$/.test(typed) ? Number(typed) : NaN;
      if (Number.isInteger(n) && n >= 0 && n <= 99) change('PATCH', item.productId, { quantity: n });
      else {
        e.target.value = String(item.quantity);
        toast('Choose a quantity from 0 to 99');
      }
    },
  });
  return el('li', { class: 'line', 'data-testid': 'cart-line', 'data-product': item.productId },
    artFor(p),
    el('div', {}, el('a', { href: `/products/${encodeURIComponent(item.productId)}` }, item.name), el('div', { class: 'muted' }, formatPrice(item.price), ' each')),
    qty,
    el('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${item.name}`, onclick: () => change('DELETE', item.productId) }, 'Remove'));
}

function render() {
  const host = document.getElementById('cart');
  const c = cart();
  // Signed out elsewhere: the saved cart is the account's still, not empty, and shows again at the next login.
  if (owner !== null && c.items.length === 0 && !(state.session?.authenticated && state.session.user.username === owner)) {
    host.replaceChildren(signedOutPanel('your saved cart'));
    return;
  }
  if (c.items.length === 0) {
    host.replaceChildren(el('div', { class: 'empty panel' }, el('p', {}, 'Your cart is empty.'), el('a', { class: 'button primary', href: '/' }, 'Browse the shop')));
    return;
  }
  const next = state.session?.authenticated ? '/checkout' : '/login?next=/checkout';
  host.replaceChildren(el('div', { class: 'layout-2' },
    el('ul', { class: 'lines', 'aria-label': 'Items' }, ...c.items.map(lineView)),
    el('aside', { class: 'panel summary', 'aria-label': 'Summary' },
      el('h2', {}, 'Summary'),
      el('dl', {},
        el('dt', {}, 'Items'), el('dd', { 'data-testid': 'cart-items' }, String(c.count)),
        el('dt', {}, 'Shipping'), el('dd', {}, 'Free'),
        el('dt', { class: 'total' }, 'Total'), el('dd', { class: 'total', 'data-testid': 'cart-total' }, formatPrice(c.total))),
      el('div', { class: 'actions' },
        el('a', { class: 'button primary', href: next, 'data-testid': 'to-checkout' }, state.session?.authenticated ? 'Check out' : 'Log in to check out'),
        state.session?.authenticated ? null : el('a', { class: 'button', href: '/checkout', 'data-testid': 'guest-checkout' }, 'Check out as a guest')))));
}

async function main() {
  onChange(render);
  // The products give the lines' pictures only: the cart shows without them.
  [products] = await Promise.all([loadProducts().catch(() => []), loadSession()]);
  if (!state.session) {
    // No session yet: read the cart without creating one.
    const res = await fetch('/api/cart', { headers: { accept: 'application/json' } });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, data?.error?.code ?? 'HTTP_' + res.status, data?.error?.message ?? res.statusText);
    anonymousCart = data;
  }
  owner = state.session?.authenticated ? state.session.user.username : null;
  render();
}

main().catch((err) => loadFailed(document.getElementById('cart'), err));
