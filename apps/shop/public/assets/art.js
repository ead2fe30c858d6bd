// Product illustrations: one simple line icon per category, tinted by the product's hue.
const ICONS = {
  Outdoor: '<path d="M4 40 L18 16 L26 28 L31 20 L44 40 Z"/><circle cx="36" cy="11" r="4"/>',
  Kitchen: '<path d="M10 18 H34 V32 A8 8 0 0 1 26 40 H18 A8 8 0 0 1 10 32 Z"/><path d="M34 22 H38 A4 4 0 0 1 38 30 H34"/><path d="M17 8 Q19 11 17 14 M23 8 Q25 11 23 14"/>',
  Home: '<path d="M8 22 L24 9 L40 22"/><path d="M12 20 V40 H36 V20"/><path d="M21 40 V30 H27 V40"/>',
  Stationery: '<path d="M12 36 L32 10 L38 15 L18 41 L11 42 Z"/><path d="M29 14 L35 19"/>',
  Audio: '<path d="M10 30 V24 A14 14 0 0 1 38 24 V30"/><rect x="7" y="28" width="8" height="12" rx="3"/><rect x="33" y="28" width="8" height="12" rx="3"/>',
  Wellness: '<path d="M12 38 C12 20 24 10 38 10 C38 26 28 38 12 38 Z"/><path d="M12 38 L28 22"/>',
};

/** An <svg> element (built from fixed markup only, never from data) for a product. */
export function artFor(product) {
  const wrap = document.createElement('div');
  wrap.className = 'art';
  wrap.style.setProperty('--hue', String(Number(product.hue) || 0));
  const paths = ICONS[product.category] ?? ICONS.Home;
  wrap.innerHTML = `<svg viewBox="0 0 48 48" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">${paths}</svg>`;
  return wrap;
}
