// One product: details, quantity, add to cart; viewing it is recorded in the session's recently viewed.
import { addToCart, describeError, el, formatPrice, loadSession, onChange, state, toast, UNAVAILABLE } from './app.js';
import { artFor } from './art.js';
import { loadProducts, renderRecent } from './catalog.js';

let product = null;

function render() {
  const host = document.getElementById('product');
  if (!product) return;
  const qty = el('input', { id: 'qty', type: 'number', min: '1', max: '99', value: '1', inputmode: 'numeric' });
  const button = el('button', { type: 'submit', class: 'primary', 'data-testid': 'add-to-cart' }, 'Add to cart');
  const form = el('form', {
    class: 'buy',
    onsubmit: async (e) => {
      e.preventDefault();
      const n = Number(qty.value);
      if (!Number.isInteger(n) || n < 1 || n > 99) {
        toast('Choose a quantity from 1 to 99');
        qty.focus();
        return;
      }
      button.disabled = true;
      try {
        const cart = await addToCart(product.id, n);
        const line = cart.items.find((i) => i.productId === product.id);
        toast(`Added to your cart (${line ? line.quantity : n} in cart)`);
        // The view came before there was a session to record it in; record it now that there is one.
        if (!state.session?.recentlyViewed.includes(product.id)) {
          await fetch(`/api/products/${encodeURIComponent(product.id)}`, { headers: { accept: 'application/json' } });
          await loadSession();
        }
      } catch (err) {
        toast(describeError(err));
      } finally {
        button.disabled = false;
      }
    },
  }, el('label', {}, 'Quantity', qty), button);
  host.replaceChildren(el('div', { class: 'product' },
    artFor(product),
    el('div', {},
      el('p', { class: 'category muted' }, product.category),
      el('h1', {}, product.name),
      el('p', { class: 'price', 'data-testid': 'price' }, formatPrice(product.price)),
      el('p', { class: 'lead' }, product.description),
      form,
      el('p', { class: 'muted' }, 'Free returns within 30 days. Ships in 2–3 working days.'))));
  renderRecent(product.id);
}

async function main() {
  const id = decodeURIComponent(location.pathname.split('/')[2] ?? '');
  const [res] = await Promise.all([fetch(`/api/products/${encodeURIComponent(id)}`, { headers: { accept: 'application/json' } }),
    loadProducts().catch(() => null)]);
  if (!res.ok) {
    // Only a 404 says there is no such product; a failure of the server (the session store down) does not.
    const failed = res.status !== 404;
    document.getElementById('product').replaceChildren(el('div', { class: 'empty', 'data-testid': failed ? 'unavailable' : 'not-found' },
      el('h1', {}, failed ? 'Temporarily unavailable' : 'Product not found'),
      failed ? el('p', {}, UNAVAILABLE) : null,
      el('p', {}, failed ? el('a', { href: location.pathname }, 'Try again') : null, failed ? ' · ' : null, el('a', { href: '/' }, 'Back to the shop'))));
    await loadSession().catch(() => null);
    return;
  }
  product = await res.json();
  document.title = `${product.name} · Tether Supply Co.`;
  document.getElementById('crumb').textContent = product.name;
  onChange(render);
  // After the product request, so the session summary already lists this view.
  await loadSession().catch(() => null);
  render();
}

main().catch((err) => toast(describeError(err)));
