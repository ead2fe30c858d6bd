// Product illustrations: a simple line drawing per product (fixed markup, never data), tinted by its hue.
const BY_ID = {
  'trail-runner': '<path d="M6 30 C10 30 14 26 16 20 L22 22 C26 28 34 30 42 31 V36 H6 Z"/><path d="M22 26 L25 24 M26 29 L29 27"/>',
  'summit-daypack': '<rect x="13" y="12" width="22" height="28" rx="6"/><path d="M19 12 V9 A5 5 0 0 1 29 9 V12"/><rect x="18" y="26" width="12" height="8" rx="2"/>',
  'camp-mug': '<path d="M10 16 H32 V34 A6 6 0 0 1 26 40 H16 A6 6 0 0 1 10 34 Z"/><path d="M32 20 H36 A4 4 0 0 1 36 30 H32"/><path d="M17 6 Q19 9 17 12 M24 6 Q26 9 24 12"/>',
  headlamp: '<circle cx="24" cy="26" r="7"/><path d="M7 26 A17 11 0 0 1 41 26"/><path d="M24 13 V8 M16 15 L13 11 M32 15 L35 11"/>',
  'pour-over': '<path d="M12 12 H36 L28 28 H20 Z"/><path d="M14 34 H34 V40 H14 Z"/><path d="M24 28 V33"/>',
  'chef-knife': '<path d="M8 32 L32 14 C37 11 41 15 37 19 L15 36 Z"/><path d="M15 36 L8 42"/>',
  'cast-iron': '<circle cx="20" cy="26" r="12"/><circle cx="20" cy="26" r="8"/><path d="M32 26 H44"/>',
  'linen-towels': '<rect x="12" y="8" width="24" height="32" rx="2"/><path d="M12 14 H36 M12 34 H36 M18 8 V40"/>',
  'desk-lamp': '<path d="M14 41 H30 M22 41 L16 26 L28 14"/><path d="M25 9 L38 17 L31 24 Z"/>',
  'wool-throw': '<path d="M10 12 H38 V36 H10 Z"/><path d="M10 20 L18 12 M10 28 L26 12 M10 36 L34 12 M18 36 L38 16 M26 36 L38 24"/>',
  planter: '<path d="M14 24 H34 L31 40 H17 Z"/><path d="M24 24 C24 16 20 12 14 10 M24 24 C24 18 28 14 34 13"/>',
  candle: '<rect x="16" y="20" width="16" height="20" rx="2"/><path d="M24 20 V16"/><path d="M24 7 C27 10 27 13 24 14 C21 13 21 10 24 7 Z"/>',
  notebook: '<rect x="12" y="7" width="24" height="33" rx="2"/><path d="M18 7 V40"/><path d="M22 16 H31 M22 22 H31"/>',
  'fountain-pen': '<path d="M24 6 L32 18 L26 41 H22 L16 18 Z"/><path d="M24 18 V28"/>',
  'desk-organiser': '<path d="M8 26 H40 V38 H8 Z"/><path d="M20 26 V38 M30 26 V38"/><path d="M14 26 V12 M17 26 V16 M35 26 L38 14"/>',
  'washi-tape': '<circle cx="20" cy="24" r="11"/><circle cx="20" cy="24" r="5"/><path d="M31 24 H42 L40 30 H31"/>',
  headphones: '<path d="M10 30 V24 A14 14 0 0 1 38 24 V30"/><rect x="7" y="28" width="8" height="12" rx="3"/><rect x="33" y="28" width="8" height="12" rx="3"/>',
  speaker: '<rect x="14" y="7" width="20" height="34" rx="4"/><circle cx="24" cy="29" r="6"/><circle cx="24" cy="15" r="2"/>',
  turntable: '<rect x="6" y="10" width="36" height="28" rx="3"/><circle cx="21" cy="24" r="9"/><circle cx="21" cy="24" r="2"/><path d="M36 14 V26 L30 30"/>',
  earbuds: '<circle cx="15" cy="17" r="5"/><path d="M19 20 V34"/><circle cx="33" cy="17" r="5"/><path d="M29 20 V34"/>',
  'yoga-mat': '<circle cx="14" cy="28" r="8"/><circle cx="14" cy="28" r="3"/><path d="M14 20 H40 V36 H14"/>',
  'water-bottle': '<rect x="16" y="14" width="16" height="28" rx="5"/><rect x="19" y="6" width="10" height="8" rx="2"/><path d="M16 22 H32"/>',
  'tea-sampler': '<path d="M12 38 C12 20 24 10 38 10 C38 26 28 38 12 38 Z"/><path d="M12 38 L28 22"/>',
  'foam-roller': '<ellipse cx="12" cy="24" rx="5" ry="10"/><path d="M12 14 H36 M12 34 H36"/><ellipse cx="36" cy="24" rx="5" ry="10"/>',
};

const BY_CATEGORY = {
  Outdoor: '<path d="M4 40 L18 16 L26 28 L31 20 L44 40 Z"/><circle cx="36" cy="11" r="4"/>',
  Home: '<path d="M8 22 L24 9 L40 22"/><path d="M12 20 V40 H36 V20"/><path d="M21 40 V30 H27 V40"/>',
};

/** A tinted illustration for a product: `<div class="art">` holding an `<svg>`. */
export function artFor(product) {
  const wrap = document.createElement('div');
  wrap.className = 'art';
  wrap.style.setProperty('--hue', String(Number(product.hue) || 0));
  const paths = BY_ID[product.id] ?? BY_CATEGORY[product.category] ?? BY_CATEGORY.Home;
  wrap.innerHTML = `<svg viewBox="0 0 48 48" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">${paths}</svg>`;
  return wrap;
}
