// Order history, newest first: a user's, or for a visitor the orders this browser's session placed as a
// guest (the server knows which only while that session lasts).
import { api, el, formatPrice, loadFailed, loadSession, onChange, sendToLogin, signedOutPanel } from './app.js';

function orderView(o) {
  return el('article', { class: 'panel order', 'data-testid': 'order', 'data-order': o.id },
    el('header', {}, el('h2', {}, `Order ${o.id}`), el('span', { class: 'muted' }, new Date(o.createdAt).toLocaleString())),
    el('ul', {}, ...o.items.map((i) => el('li', {}, `${i.quantity} × ${i.name}`))),
    el('p', {}, el('strong', {}, formatPrice(o.total)), ` · to ${o.shipping.name}, ${o.shipping.city} · ${o.payment.brand} ending in ${o.payment.last4}`),
    o.email ? el('p', { class: 'muted', 'data-testid': 'order-email' }, `Receipt to ${o.email}`) : null);
}

async function main() {
  // Created if need be, as requireLogin does: the login page a visitor may be sent to needs one anyway.
  const s = await loadSession({ create: true });
  const orders = await api('GET', '/api/orders');
  // A visitor with no orders placed as a guest in this session has nothing to see here without an account.
  if (!s?.authenticated && orders.length === 0) return sendToLogin();
  const host = document.getElementById('orders');
  if (orders.length === 0) {
    host.replaceChildren(el('div', { class: 'empty panel' }, el('p', {}, 'No orders yet.'), el('a', { class: 'button primary', href: '/' }, 'Start shopping')));
    return;
  }
  const note = s?.authenticated ? null : el('p', { class: 'muted', 'data-testid': 'guest-orders-note' },
    'These are the orders placed in this browser as a guest. They are listed here only while this session lasts: keep the order number, it is your reference.');
  const render = () => host.replaceChildren(el('div', { class: 'stack' }, note, ...orders.map(orderView)));
  render();
  // A currency switch prices the orders again; an account's orders go once it is signed out elsewhere.
  const owner = s?.authenticated ? s.user.username : null;
  onChange((view) => {
    if (owner !== null && !(view?.authenticated && view.user.username === owner)) host.replaceChildren(signedOutPanel('your order history'));
    else render();
  });
}

main().catch((err) => loadFailed(document.getElementById('orders'), err));
