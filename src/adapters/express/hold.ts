/**
 * Express responses are held on the prototype they all inherit from, `express.response` (every app's
 * and mounted sub-app's own `response` chains to it), not on each response object: see
 * shared/hold.ts. A response from another copy of Express is held on the object itself.
 * @module
 */
import type { ServerResponse } from 'node:http';
import express from 'express';
import { holdOnPrototype, installHold } from '../shared/hold.js';
import type { Commit, LateEnd } from '../shared/hold.js';

const base = express.response as object;

/** Installs the holding methods on `express.response`; the middleware factories call it before any request. */
export function installExpressHold(): void {
  installHold(base);
}

export function holdExpressResponse(res: ServerResponse, commit: Commit, late?: LateEnd): void {
  holdOnPrototype(base, res, commit, late);
}
