/**
 * tether/express: the native middleware (`sessions`, `req.tether`).
 * @module
 * @example
 * import express from 'express';
 * import { createTether } from 'tether';
 * import { sessions, sessionOf } from 'tether/express';
 * const tether = createTether({ secrets: [process.env.TETHER_SECRET!] });
 * const app = express();
 * app.use(sessions(tether));
 * app.post('/visit', async (req, res) => {
 *   const s = sessionOf<{ visits: number }>(req);
 *   await s.update((d) => { d.visits = (d.visits ?? 0) + 1; });
 *   res.json({ visits: s.data.visits });
 * });
 */
export { sessions, sessionOf } from './native.js';
export type { ExpressAdapterOptions } from './native.js';
