/**
 * Express responses are held on the prototype they all inherit from, `express.response` (every app's
 * and mounted sub-app's own `response` chains to it), not on each response object: see
 * shared/hold.ts. A response from another copy of Express, or any response when Express itself cannot
 * be loaded (the middleware used by a Connect-style app), is held on the object itself.
 * @module
 */
import { createRequire } from 'node:module';
import type { ServerResponse } from 'node:http';
import { holdOnPrototype, holdResponse, installHold } from '../shared/hold.js';
import type { Commit, Ending, LateEnd } from '../shared/hold.js';

/** `express.response` of the Express this package resolves, null when there is none; undefined until looked up. */
let base: object | null | undefined;

function expressResponse(): object | null {
  if (base === undefined) {
    try {
      base = (createRequire(import.meta.url)('express') as { response?: object }).response ?? null;
    } catch {
      base = null;
    }
  }
  return base;
}

/** Installs the holding methods on `express.response`; the middleware factories call it before any request. */
export function installExpressHold(): void {
  const proto = expressResponse();
  if (proto !== null) installHold(proto);
}

export function holdExpressResponse(res: ServerResponse, commit: Commit, late?: LateEnd, ending?: Ending): void {
  const proto = expressResponse();
  if (proto === null) holdResponse(res, commit, late, ending);
  else holdOnPrototype(proto, res, commit, late, ending);
}
