/**
 * Origin checks that an engine's WebSocket handshakes take from the handshake itself, for an engine
 * whose cookie is Secure on some requests only: the express-session drop-in writes its own Set-Cookie,
 * Secure per request (`secure: 'auto'`, a `cookie` function), and registers here what its handshakes
 * must pass. `Tether.openSocket` asks; an engine with nothing registered keeps its `csrf` settings.
 * @module
 */
import type { RequestView } from './csrf.js';

/** What decides, for one request, whether its origin must be a secure one and whether it must carry one. */
export interface OriginChecks {
  readonly secureOrigins: boolean;
  readonly requireOrigin: boolean;
}

/** The checks for a handshake, or undefined for the engine's own. */
export type HandshakeOrigins = (req: RequestView) => OriginChecks | undefined;

const registered = new WeakMap<object, HandshakeOrigins>();

/** From now on `engine`'s handshakes take their origin checks from `decide`. */
export function decideHandshakeOrigins(engine: object, decide: HandshakeOrigins): void {
  registered.set(engine, decide);
}

/** What `engine`'s handshakes take their origin checks from, if anything was registered. */
export function handshakeOriginsOf(engine: object): HandshakeOrigins | undefined {
  return registered.get(engine);
}
