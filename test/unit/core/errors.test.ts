/** docs/errors.md, ERROR_CODES and the error classes agree in both directions, statuses included; every warning code is documented. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as errors from '../../../src/core/errors.js';
import { ERROR_CODES, TetherError, isTetherError } from '../../../src/core/errors.js';
import { errorResponse } from '../../../src/adapters/shared/http.js';
import { unreadableError } from '../../../src/testing/adapter-kit.js';

interface DocRow { code: string; status: number; className: string; meaning: string }

function docRows(): DocRow[] {
  const text = readFileSync('docs/errors.md', 'utf8');
  return [...text.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| `(\w+)` \| (.+) \|$/gm)].map((m) => ({
    code: m[1]!, status: Number(m[2]), className: m[3]!, meaning: m[4]!,
  }));
}

/** Every exported subclass of TetherError, instantiated with placeholder arguments. */
function classes(): Map<string, TetherError> {
  const out = new Map<string, TetherError>();
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function' || value === TetherError || !(value.prototype instanceof TetherError)) continue;
    const Ctor = value as unknown as new (...args: unknown[]) => TetherError;
    out.set(name, new Ctor('placeholder', 1));
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('error codes', () => {
  it('docs/errors.md when compared with ERROR_CODES then lists every code once and nothing else', () => {
    const documented = docRows().map((r) => r.code);
    assert.equal(new Set(documented).size, documented.length, 'a code listed twice');
    assert.deepEqual([...ERROR_CODES].filter((c) => !documented.includes(c)), [], 'codes missing from docs/errors.md');
    assert.deepEqual(documented.filter((c) => !(ERROR_CODES as readonly string[]).includes(c)), [], 'documented codes not in ERROR_CODES');
    for (const r of docRows()) assert.ok(r.meaning.length > 20, `${r.code} needs a meaning`);
  });

  it('error classes when instantiated then each has a documented code, status and class name, and every code has a class', () => {
    const rows = new Map(docRows().map((r) => [r.code, r]));
    const byCode = new Map<string, string>();
    for (const [name, err] of classes()) {
      assert.ok(isTetherError(err), name);
      const row = rows.get(err.code);
      assert.ok(row, `${name} raises ${err.code}, which docs/errors.md does not list`);
      assert.equal(row.status, err.status, `${err.code}: documented status`);
      assert.equal(row.className, name, `${err.code}: documented class`);
      assert.equal(err.name, name, `${name}.name`);
      assert.equal(byCode.has(err.code), false, `${err.code} raised by two classes`);
      byCode.set(err.code, name);
    }
    assert.deepEqual([...ERROR_CODES].filter((c) => !byCode.has(c)), [], 'codes no class raises');
  });

  it('source when it builds an error or an error body then uses only codes in ERROR_CODES', () => {
    const used = new Set<string>();
    for (const file of sourceFiles('src')) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:new TetherError|super)\(\s*'([A-Z][A-Z_]+)'/g)) used.add(m[1]!);
      for (const m of text.matchAll(/error: \{ code: '([A-Z][A-Z_]+)'/g)) used.add(m[1]!);
    }
    assert.ok(used.size >= 10, 'the scan finds the error constructors');
    assert.deepEqual([...used].filter((c) => !(ERROR_CODES as readonly string[]).includes(c)), []);
  });

  it('warning codes in the source when compared with the docs then each is listed: in docs/errors.md, TETHER_COMPAT_* in the migration guide', () => {
    const used = new Set<string>();
    for (const file of sourceFiles('src')) {
      for (const m of readFileSync(file, 'utf8').matchAll(/'(TETHER_[A-Z_]+)'/g)) used.add(m[1]!);
    }
    assert.ok(used.size >= 10, 'the scan finds the warning codes');
    const errorsDoc = readFileSync('docs/errors.md', 'utf8');
    const warnings = new Set([...errorsDoc.slice(errorsDoc.indexOf('## Warnings')).matchAll(/^\| `(TETHER_[A-Z_*]+)` \|/gm)].map((m) => m[1]!));
    const migration = readFileSync('docs/migrating-from-express-session.md', 'utf8');
    const missing = [...used].filter((c) => (c.startsWith('TETHER_COMPAT_') ? !migration.includes(`\`${c}\``) || !warnings.has('TETHER_COMPAT_*') : !warnings.has(c)));
    assert.deepEqual(missing, []);
  });

  it('errorResponse when given a TetherError or anything else then answers its status and code, hiding internals', () => {
    assert.deepEqual(errorResponse(new errors.SessionTooLargeError(70_000, 65_536)).status, 413);
    const hidden = errorResponse(new Error('password=hunter2 at db.internal'));
    assert.deepEqual(hidden, { status: 500, body: { error: { code: 'INTERNAL_ERROR', message: 'internal server error' } }, retryAfter: undefined });
    assert.deepEqual(errorResponse('a string').body.error.code, 'INTERNAL_ERROR');
  });

  it('isTetherError and errorResponse when given a value none of whose properties can be read then neither throws: it is not a Tether error, and answers 500', () => {
    const unreadable = unreadableError();
    assert.throws(() => (unreadable as { code?: unknown }).code, /cannot be read/, 'reading it throws');
    assert.equal(isTetherError(unreadable), false);
    assert.deepEqual(errorResponse(unreadable), { status: 500, body: { error: { code: 'INTERNAL_ERROR', message: 'internal server error' } }, retryAfter: undefined });
  });

  it('errorResponse when the error asks the client to wait then gives Retry-After: 1 s for a store outage, the error\'s own for 429, none otherwise', () => {
    assert.equal(errorResponse(new errors.StoreUnavailableError('down')).retryAfter, '1');
    assert.equal(errorResponse(new errors.RateLimitedError()).retryAfter, '60');
    assert.equal(errorResponse(new errors.RateLimitedError('slow down', 899.2)).retryAfter, '900');
    assert.equal(errorResponse(new errors.SessionTooLargeError(70_000, 65_536)).retryAfter, undefined);
  });
});
