/**
 * The checkout flows: shipping → payment → review, each step's input checked here, and for a guest the
 * same steps after one that asks for the receipt's email address. Payment keeps only the brand, the last
 * four digits and the expiry: the full card number is never stored.
 * @module
 */
import { defineFlow } from 'tether/flow';
import type { FlowStepDefinition } from 'tether/flow';
import { validationFailed } from './errors.js';
import { objectBody, onlyKeys, stringField } from './validate.js';

export interface Shipping {
  name: string;
  address: string;
  city: string;
  postalCode: string;
  country: string;
}

/** A guest's: where the receipt goes. */
export interface Contact {
  email: string;
}

export interface Payment {
  brand: string;
  last4: string;
  expiry: string;
}

export function parseShipping(input: unknown): Shipping {
  const b = objectBody(input);
  onlyKeys(b, ['name', 'address', 'city', 'postalCode', 'country']);
  return {
    name: stringField(b, 'name', 1, 100),
    address: stringField(b, 'address', 1, 200),
    city: stringField(b, 'city', 1, 100),
    postalCode: stringField(b, 'postalCode', 2, 12, /^[A-Za-z0-9][A-Za-z0-9 -]*$/, 'may hold letters, digits, spaces and -'),
    country: stringField(b, 'country', 2, 56),
  };
}

/**
 * The form WHATWG's `<input type=email>` accepts (HTML §4.10.5.1.5), but with a dot in the domain: a
 * receipt to `ada@localhost` would never arrive. At most 254 characters (RFC 5321 §4.5.3.1.3), 64
 * before the @.
 */
const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function parseContact(input: unknown): Contact {
  const b = objectBody(input);
  onlyKeys(b, ['email']);
  return { email: stringField(b, 'email', 3, 254, EMAIL, 'must be an email address, like ada@example.org') };
}

/** The Luhn (mod 10) check digit test. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function brandOf(digits: string): string {
  if (digits.startsWith('4')) return 'Visa';
  const two = Number(digits.slice(0, 2));
  const four = Number(digits.slice(0, 4));
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return 'Mastercard';
  if (two === 34 || two === 37) return 'American Express';
  return 'Card';
}

/** `now` is injectable so the expiry rule is testable on any date. */
export function parsePayment(input: unknown, now: Date = new Date()): Payment {
  const b = objectBody(input);
  onlyKeys(b, ['cardNumber', 'expiry']);
  if (typeof b.cardNumber !== 'string') throw validationFailed('cardNumber is required');
  const digits = b.cardNumber.replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(digits)) throw validationFailed('cardNumber must be 12 to 19 digits');
  if (!luhnValid(digits)) throw validationFailed('cardNumber is not a valid card number');
  if (typeof b.expiry !== 'string') throw validationFailed('expiry is required (MM/YY)');
  const m = /^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/.exec(b.expiry);
  const month = m ? Number(m[1]) : 0;
  if (!m || month < 1 || month > 12) throw validationFailed('expiry must look like MM/YY');
  const year = m[2]!.length === 2 ? 2000 + Number(m[2]) : Number(m[2]);
  // A card is valid through the last day of its expiry month.
  const endOfMonth = Date.UTC(year, month, 1);
  if (endOfMonth <= now.getTime()) throw validationFailed('the card has expired');
  if (year > now.getUTCFullYear() + 20) throw validationFailed('expiry is too far in the future');
  return { brand: brandOf(digits), last4: digits.slice(-4), expiry: `${String(month).padStart(2, '0')}/${String(year).slice(-2)}` };
}

const STEPS: readonly FlowStepDefinition[] = [
  { name: 'shipping', parse: parseShipping },
  { name: 'payment', parse: (input) => parsePayment(input) },
  { name: 'review' },
];

/** A user's, kept in the user context: it follows them to their other devices. */
export const checkoutFlow = defineFlow({ name: 'checkout', steps: STEPS });

/**
 * A guest's, kept in the session: the same steps after the email address. A flow of its own, so that
 * its view lists the step a user's lacks and its runs never pass for a user's.
 */
export const guestCheckoutFlow = defineFlow({ name: 'guestCheckout', steps: [{ name: 'contact', parse: parseContact }, ...STEPS] });
