/**
 * `npm start`: reads the environment, starts the shop, and on SIGTERM/SIGINT stops accepting, lets
 * in-flight requests finish, closes the stores and exits 0.
 * @module
 */
import { ConfigError, loadConfig } from './config.js';
import type { ShopConfig } from './config.js';
import { startShop } from './server.js';

/** How long a graceful stop may take before the process gives up and exits non-zero. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

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

async function main(): Promise<void> {
  const config = readConfig();
  if (config.workers > 1) {
    // Cluster mode arrives with the scale-out work; startShop() is the seam a worker will call.
    config.log(`warning: TETHER_WORKERS=${config.workers} is not supported yet; running one process`);
  }
  const shop = await startShop(config);
  console.log(`tether shop listening on ${shop.url} (node ${config.nodeName}, data in ${config.dataDir})`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`tether shop: ${signal}: finishing in-flight requests`);
    const timer = setTimeout(() => {
      console.error('tether shop: shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    shop.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('tether shop: error while stopping:', err);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error('tether shop: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
