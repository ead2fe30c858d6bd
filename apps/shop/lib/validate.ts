/** Small, strict input checks for JSON bodies: each failure is a 400 VALIDATION_FAILED naming the field. @module */
import { validationFailed } from './errors.js';

/** The body as a plain object, or 400. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw validationFailed('the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Refuses fields the route does not know, so a typo is an error, not a silent no-op. */
export function onlyKeys(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw validationFailed(`unknown field "${k.slice(0, 40)}"`);
}

export function integerField(body: Record<string, unknown>, name: string, min: number, max: number, fallback?: number): number {
  const v = body[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw validationFailed(`${name} must be an integer from ${min} to ${max}`);
  return v;
}

/**
 * Control characters (C0, DEL and C1): no text field holds them, and PostgreSQL's JSONB refuses NUL, so
 * a value with one, stored, would fail every later write that carries it.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is what it is for
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A one-line text field, trimmed: `min` to `max` characters, no control characters, matching `pattern`. */
export function stringField(body: Record<string, unknown>, name: string, min: number, max: number, pattern?: RegExp, hint?: string): string {
  const v = body[name];
  if (typeof v !== 'string') throw validationFailed(`${name} is required`);
  const s = v.trim();
  if (s.length < min || s.length > max) throw validationFailed(`${name} must be ${min} to ${max} characters`);
  if (CONTROL.test(s)) throw validationFailed(`${name} must not hold control characters (such as NUL or a line break)`);
  if (pattern && !pattern.test(s)) throw validationFailed(`${name} ${hint ?? 'has characters that are not allowed'}`);
  return s;
}
