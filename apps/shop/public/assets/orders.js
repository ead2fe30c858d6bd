// Order history, newest first.
import { api, describeError, el, formatPrice, requireLogin, toast } from './app.js';

function orderView(o) {
  return el('article', { class: 'panel order', 'data-testid': 'order', 'data-order': o.id },
    el('header', {}, el('h2', {}, `Order ${o.id}`), el('span', { class: 'muted' }, new Date(o.createdAt).toLocaleString())),
    el('ul', {}, ...o.items.map((i) => el('li', {}, `${i.quantity} × ${i.name}`))),
    el('p', {}, el('strong', {}, formatPrice(o.total)), ` · to ${o.shipping.name}, ${o.shipping.city} · ${o.payment.brand} ending in ${o.payment.last4}`));
}

async function main() {
  if (!(await requireLogin())) return;
  const orders = await api('GET', '/api/orders');
  const host = document.getElementById('orders');
  if (orders.length === 0) host.replaceChildren(el('div', { class: 'empty panel' }, el('p', {}, 'No orders yet.'), el('a', { class: 'button primary', href: '/' }, 'Start shopping')));
  else host.replaceChildren(el('div', { class: 'stack' }, ...orders.map(orderView)));
}

main().catch((err) => toast(describeError(err)));
