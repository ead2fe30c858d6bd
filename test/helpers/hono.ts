/** A Hono app served by @hono/node-server on a free loopback port, for the adapter tests. */
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { Hono } from 'hono';
import { listen } from '../../src/testing/adapter-kit.js';
import type { RunningApp } from '../../src/testing/adapter-kit.js';

/** Listens on 127.0.0.1; `close()` also drops idle keep-alive connections. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function serveHono(app: Hono<any>): Promise<RunningApp> {
  return listen(createAdaptorServer({ fetch: app.fetch }) as Server);
}
