// One product: details, quantity, add to cart; viewing it is recorded in the session's recently viewed.
import { addToCart, describeError, el, formatPrice, isUnavailable, loadSession, onChange, state, toast, UNAVAILABLE } from './app.js';
import { artFor } from './art.js';
import { loadProducts, renderRecent } from './catalog.js';

let product = null;
/**
 * The session could not be loaded (the session store down): the product is shown all the same (its
 * request records the view only when the session opens), with a notice that the cart may not answer.
 */
let sessionDown = false;

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
        // The store answers again: the notice that it did not goes.
        if (sessionDown) {
          sessionDown = false;
          render();
        }
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
  const notice = sessionDown ? el('p', { class: 'panel', role: 'status', 'data-testid': 'unavailable' }, UNAVAILABLE, ' Your cart may not be reachable until then.') : null;
  host.replaceChildren(...(notice ? [notice] : []), el('div', { class: 'product' },
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
  // The list names the recently viewed products. The product's own request answers while the session
  // store is down: its session is optional, the view recorded only when it opens.
  const [res] = await Promise.all([fetch(`/api/products/${encodeURIComponent(id)}`, { headers: { accept: 'application/json' } }),
    loadProducts().catch(() => null)]);
  if (!res.ok) {
    // Only a 404 says there is no such product; a failure of the server does not.
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
  // After the product request, so the session summary already lists this view. A session that cannot be
  // loaded (the session store down, 503) leaves the cart unreachable: the page says so above the product.
  await loadSession().catch((err) => {
    if (isUnavailable(err)) sessionDown = true;
  });
  render();
}

main().catch((err) => toast(describeError(err)));
