// The catalog: search, category filter, add to cart, recently viewed. Browsing creates no session.
import { addToCart, ApiError, describeError, el, formatPrice, isUnavailable, loadSession, onChange, state, toast, UNAVAILABLE } from './app.js';
import { artFor } from './art.js';

let products = [];
let category = 'All';

export function productCard(p, { compact = false } = {}) {
  const art = el('a', { href: `/products/${encodeURIComponent(p.id)}`, tabindex: '-1', 'aria-hidden': 'true' }, artFor(p));
  const body = el('div', { class: 'body' },
    el('span', { class: 'category' }, p.category),
    el('h3', {}, el('a', { href: `/products/${encodeURIComponent(p.id)}` }, p.name)));
  const footer = el('div', { class: 'footer' }, el('span', { class: 'price' }, formatPrice(p.price)));
  if (!compact) {
    footer.append(el('button', {
      type: 'button', class: 'primary', 'aria-label': `Add ${p.name} to cart`, 'data-product': p.id,
      onclick: async (e) => {
        const button = e.currentTarget;
        button.disabled = true;
        try {
          await addToCart(p.id, 1);
          toast(`Added ${p.name} to your cart`);
        } catch (err) {
          toast(describeError(err));
        } finally {
          button.disabled = false;
        }
      },
    }, 'Add'));
  }
  body.append(footer);
  return el('article', { class: 'card', 'data-testid': 'product-card' }, art, body);
}

function render() {
  const q = document.getElementById('search').value.trim().toLowerCase();
  const shown = products.filter((p) => (category === 'All' || p.category === category)
    && (!q || p.name.toLowerCase().includes(q) || p.description.toLowerCase().includes(q)));
  document.getElementById('grid').replaceChildren(...shown.map((p) => productCard(p)));
  document.getElementById('catalog-status').textContent = shown.length === products.length ? `${products.length} products` : `${shown.length} of ${products.length} products`;
  const chips = ['All', ...new Set(products.map((p) => p.category))].map((c) => el('button', {
    type: 'button', class: 'chip', 'aria-pressed': String(c === category),
    onclick: () => { category = c; render(); document.querySelector('.chip[aria-pressed="true"]')?.focus(); },
  }, c));
  document.getElementById('categories').replaceChildren(...chips);
  renderRecent();
}

export function renderRecent(exclude) {
  const section = document.getElementById('recent');
  const ids = (state.session?.recentlyViewed ?? []).filter((id) => id !== exclude);
  const items = ids.map((id) => products.find((p) => p.id === id)).filter(Boolean);
  section.hidden = items.length === 0;
  document.getElementById('recent-grid').replaceChildren(...items.map((p) => productCard(p, { compact: true })));
}

/** The products; an ApiError when the server answers with an error. */
export async function loadProducts() {
  const res = await fetch('/api/products', { headers: { accept: 'application/json' } });
  const data = await res.json().catch(() => null);
  if (!res.ok || !Array.isArray(data)) throw new ApiError(res.status, data?.error?.code ?? 'HTTP_' + res.status, data?.error?.message ?? res.statusText);
  products = data;
  return products;
}

async function main() {
  onChange(() => products.length && render());
  try {
    await Promise.all([loadProducts(), loadSession().catch(() => null)]);
  } catch (err) {
    document.getElementById('catalog-status').textContent = isUnavailable(err) ? UNAVAILABLE : describeError(err);
    return;
  }
  document.getElementById('search').addEventListener('input', render);
  render();
}

if (document.getElementById('grid')) main().catch((err) => toast(describeError(err)));
