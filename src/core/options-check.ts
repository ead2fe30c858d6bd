/**
 * Construction-time option checking shared by every constructor: unknown keys and wrong types are
 * errors with a message naming the owner and the option, never silent defaults.
 * @module
 */
import { OptionsInvalidError } from './errors.js';

/**
 * The longest delay Node.js timers accept (2^31 − 1 ms, about 24.8 days). A longer one is not an
 * error there: setTimeout and setInterval warn (TimeoutOverflowWarning) and fire after 1 ms, so a
 * timeout meant as "very long" would fail every call at once. Options that end up in a timer are
 * checked against it at construction instead.
 */
export const MAX_TIMER_MS = 2_147_483_647;

export type OptionKind =
  | 'string'
  | 'nonEmptyString'
  | 'boolean'
  | 'function'
  | 'object'
  | 'positiveInteger'
  | 'nonNegativeInteger'
  | 'timerMs'
  | 'timerMsOrZero'
  | 'positiveNumber'
  | 'fraction'
  | 'stringArray'
  | 'clock'
  | 'any'
  | readonly string[]
  | ((value: unknown) => string | null);

/** What each kind accepts, said in the error message. */
const EXPECTED: Record<Exclude<OptionKind, readonly string[] | ((value: unknown) => string | null)>, string> = {
  string: 'a string',
  nonEmptyString: 'a non-empty string',
  boolean: 'a boolean',
  function: 'a function',
  object: 'an object',
  positiveInteger: 'a positive integer',
  nonNegativeInteger: 'a non-negative integer',
  timerMs: `a positive integer of milliseconds, at most ${MAX_TIMER_MS} (about 24.8 days, the longest a Node.js timer can wait)`,
  timerMsOrZero: `0 or a positive integer of milliseconds, at most ${MAX_TIMER_MS} (about 24.8 days, the longest a Node.js timer can wait)`,
  positiveNumber: 'a positive number',
  fraction: 'a number between 0 and 1',
  stringArray: 'an array of strings',
  clock: 'an object with a now() method',
  any: 'anything',
};

function accepts(kind: OptionKind, v: unknown): string | null {
  if (typeof kind === 'function') return kind(v);
  if (Array.isArray(kind)) return kind.includes(v) ? null : `one of ${kind.map((k) => JSON.stringify(k)).join(', ')}`;
  const ok = (() => {
    switch (kind as keyof typeof EXPECTED) {
      case 'string': return typeof v === 'string';
      case 'nonEmptyString': return typeof v === 'string' && v.length > 0;
      case 'boolean': return typeof v === 'boolean';
      case 'function': return typeof v === 'function';
      case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
      case 'positiveInteger': return Number.isSafeInteger(v) && (v as number) > 0;
      case 'nonNegativeInteger': return Number.isSafeInteger(v) && (v as number) >= 0;
      case 'timerMs': return Number.isSafeInteger(v) && (v as number) > 0 && (v as number) <= MAX_TIMER_MS;
      case 'timerMsOrZero': return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_TIMER_MS;
      case 'positiveNumber': return typeof v === 'number' && Number.isFinite(v) && v > 0;
      case 'fraction': return typeof v === 'number' && v >= 0 && v <= 1;
      case 'stringArray': return Array.isArray(v) && v.every((s) => typeof s === 'string');
      case 'clock': return typeof v === 'object' && v !== null && typeof (v as { now?: unknown }).now === 'function';
      case 'any': return true;
    }
  })();
  return ok ? null : EXPECTED[kind as keyof typeof EXPECTED];
}

/**
 * Throws OPTIONS_INVALID when `options` has a key not in `schema`, or a defined value of the wrong kind.
 * `undefined` values are treated as absent.
 */
export function checkOptions(owner: string, options: unknown, schema: Record<string, OptionKind>, path = 'options'): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new OptionsInvalidError(`${owner} ${path} must be an object`);
  }
  for (const [key, value] of Object.entries(options)) {
    // Own keys only: `constructor`, `toString` and the like are inherited by every schema object.
    const kind = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (kind === undefined) {
      const known = Object.keys(schema).sort().join(', ');
      throw new OptionsInvalidError(`${owner} ${path}.${key} is not an option (known: ${known})`);
    }
    if (value === undefined) continue;
    const expected = accepts(kind, value);
    if (expected !== null) throw new OptionsInvalidError(`${owner} ${path}.${key} must be ${expected}`);
  }
}
