/**
 * `npm start`: reads the environment and runs the shop as a cluster: a primary that routes each
 * connection to a worker by session cookie, and TETHER_WORKERS workers (default 2) that serve from the
 * shared store. On SIGTERM/SIGINT it stops accepting, lets in-flight requests finish, closes the stores
 * and exits 0 (within 10 s).
 * @module
 */
import { resolveOptions } from 'tether';
import { runCluster } from 'tether/cluster';
import { ConfigError, loadConfig, processLocal } from './config.js';
import type { ShopConfig } from './config.js';
import { relayForgets } from './lib/active-sessions.js';

/** Workers when TETHER_WORKERS is not set (1 when a store lives inside the process). */
const DEFAULT_WORKERS = 2;
/** Upper bound of TETHER_DRAIN_DELAY_MS: the whole stop must fit in 10 s. */
const MAX_DRAIN_DELAY_MS = 8_000;

function readConfig(): ShopConfig {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`tether shop: configuration error: ${err.message}`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

/**
 * TETHER_DRAIN_DELAY_MS: after SIGTERM, how long the node keeps serving while /healthz answers 503, so a
 * balancer's health checks take it out before it stops accepting (behind HAProxy: inter + (fall - 1) × fastinter
 * plus a margin; docs/deploy.md).
 */
function drainDelayMs(): number {
  const raw = process.env.TETHER_DRAIN_DELAY_MS?.trim();
  if (!raw) return 0;
  if (!/^\d+$/.test(raw) || Number(raw) > MAX_DRAIN_DELAY_MS) {
    console.error(`tether shop: configuration error: TETHER_DRAIN_DELAY_MS: must be a whole number of milliseconds from 0 to ${MAX_DRAIN_DELAY_MS}, got "${raw}"`);
    process.exit(78); // EX_CONFIG
  }
  return Number(raw);
}

async function main(): Promise<void> {
  const config = readConfig();
  // A store inside the process cannot be shared by workers (loadConfig refuses more than one when asked).
  const local = processLocal(config.storeUrl) || processLocal(config.databaseUrl);
  const workers = process.env.TETHER_WORKERS?.trim() ? config.workers : local ? 1 : DEFAULT_WORKERS;
  const cluster = await runCluster({
    workers,
    port: config.port,
    host: config.host,
    // The primary routes on the engine's cookie name (which depends on production mode); it never verifies it.
    cookieName: resolveOptions({ secrets: config.secrets, production: config.production }).cookie.name,
    drainDelayMs: drainDelayMs(),
    startWorker: async () => {
      // Loaded here, so the primary (which only routes connections) never loads Fastify and the drivers.
      const { buildShop } = await import('./server.js');
      const shop = await buildShop(config);
      await shop.app.ready();
      return { server: shop.app.server, close: () => shop.close(), drain: () => shop.drain() };
    },
  });
  if (cluster.role === 'primary') {
    relayForgets();
    console.log(`tether shop listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${cluster.port} (${workers} worker(s), data in ${config.dataDir})`);
  }
}

main().catch((err: unknown) => {
  console.error('tether shop: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
