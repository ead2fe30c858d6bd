/**
 * The cart and preferences models: plain data kept in the session (anonymous) or the user context
 * (logged in), changed only by pure functions so compare-and-set replays give the same result.
 * @module
 */
import type { Product } from '../db/index.js';

export interface CartLine {
  productId: string;
  quantity: number;
}

export interface Preferences {
  theme: 'light' | 'dark';
  currency: 'USD' | 'EUR' | 'GBP';
}

export const MAX_LINE_QUANTITY = 99;
export const THEMES = ['light', 'dark'] as const;
export const CURRENCIES = ['USD', 'EUR', 'GBP'] as const;
export const DEFAULT_PREFERENCES: Readonly<Preferences> = Object.freeze({ theme: 'light', currency: 'USD' });

export interface CartView {
  items: Array<{ productId: string; name: string; quantity: number; price: number }>;
  count: number;
  total: number;
}

/** Whatever is stored, read defensively: only well-formed lines survive. */
export function linesOf(value: unknown): CartLine[] {
  if (!Array.isArray(value)) return [];
  return value.filter((l): l is CartLine => typeof l === 'object' && l !== null && typeof (l as CartLine).productId === 'string'
    && Number.isInteger((l as CartLine).quantity) && (l as CartLine).quantity > 0)
    .map((l) => ({ productId: l.productId, quantity: Math.min(l.quantity, MAX_LINE_QUANTITY) }));
}

/** Adds to a line (creating it), capped at MAX_LINE_QUANTITY. */
export function addLine(lines: readonly CartLine[], productId: string, quantity: number): CartLine[] {
  const out = linesOf(lines);
  const line = out.find((l) => l.productId === productId);
  if (line) line.quantity = Math.min(MAX_LINE_QUANTITY, line.quantity + quantity);
  else out.push({ productId, quantity: Math.min(MAX_LINE_QUANTITY, quantity) });
  return out;
}

/** Sets a line's quantity; 0 removes it. */
export function setLine(lines: readonly CartLine[], productId: string, quantity: number): CartLine[] {
  const out = linesOf(lines).filter((l) => l.productId !== productId || quantity > 0);
  const line = out.find((l) => l.productId === productId);
  if (line) line.quantity = quantity;
  else if (quantity > 0) out.push({ productId, quantity });
  return out;
}

/** Login: the anonymous cart merged into the saved one by summing quantities, capped per line. */
export function mergeLines(saved: readonly CartLine[], anonymous: readonly CartLine[]): CartLine[] {
  let out = linesOf(saved);
  for (const l of linesOf(anonymous)) out = addLine(out, l.productId, l.quantity);
  return out;
}

/** After an order: takes the ordered quantities out, keeping anything added meanwhile. */
export function subtractLines(lines: readonly CartLine[], ordered: readonly CartLine[]): CartLine[] {
  let out = linesOf(lines);
  for (const o of ordered) {
    const line = out.find((l) => l.productId === o.productId);
    if (line) out = setLine(out, o.productId, Math.max(0, line.quantity - o.quantity));
  }
  return out;
}

export function centsToAmount(cents: number): number {
  return Math.round(cents) / 100;
}

/** Priced lines for a response; lines naming products no longer sold are left out. */
export function cartView(lines: readonly CartLine[], catalog: ReadonlyMap<string, Product>): CartView {
  const items: CartView['items'] = [];
  let count = 0;
  let totalCents = 0;
  for (const l of linesOf(lines)) {
    const p = catalog.get(l.productId);
    if (!p) continue;
    items.push({ productId: p.id, name: p.name, quantity: l.quantity, price: centsToAmount(p.priceCents) });
    count += l.quantity;
    totalCents += l.quantity * p.priceCents;
  }
  return { items, count, total: centsToAmount(totalCents) };
}

export function isPreferences(value: unknown): value is Preferences {
  const p = value as Partial<Preferences> | null;
  return typeof p === 'object' && p !== null && (THEMES as readonly unknown[]).includes(p.theme) && (CURRENCIES as readonly unknown[]).includes(p.currency);
}

export function preferencesOf(value: unknown): Preferences {
  return isPreferences(value) ? { theme: value.theme, currency: value.currency } : { ...DEFAULT_PREFERENCES };
}
