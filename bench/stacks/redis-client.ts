/**
 * The node-redis client the anchors' Redis stores run on (connect-redis takes one). An 'error' event
 * with no listener would crash the server: a lost connection is reported on one line instead (the
 * client reconnects by itself; requests that fail meanwhile are counted as errors), and once the
 * harness is gone (a run stopped midway, whose redis-servers go first) the server ends quietly.
 * @module
 */
import { createClient } from 'redis';

/** Connected; resolves once the client is ready. */
export async function anchorRedisClient(url: string | undefined) {
  const client = createClient({ url });
  client.on('error', (err: Error) => {
    if (!process.connected) process.exit(0);
    console.error(`redis client: ${err.message}`);
  });
  await client.connect();
  return client;
}
