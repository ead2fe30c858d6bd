/**
 * The floor under any session layer that keys its sessions by a hash of the ID (SECURITY.md S7): the
 * Cookie header parsed with `cookie`, the ID hashed once with SHA-256, the session looked up in a Map.
 * Nothing else: no signature, no expiry, no copy or comparison of the data, no store call, no CSRF
 * check, no concurrency control (it loses updates like the anchors). It is not a contender; its read
 * overhead on a framework shows what part of a session layer's cost no implementation of S7 avoids there.
 * @module
 */
import { hash, randomBytes } from 'node:crypto';
import { parse } from 'cookie';
import type { ShopSession } from '../lib/workload.js';

export interface FloorSession {
  key: string;
  data: ShopSession;
}

export class FloorSessions {
  readonly #sessions = new Map<string, ShopSession>();

  /** The session the Cookie header names, if any. */
  find(cookieHeader: string | undefined): FloorSession | null {
    const id = cookieHeader ? parse(cookieHeader).sid : undefined;
    if (!id) return null;
    const key = keyOf(id);
    const data = this.#sessions.get(key);
    return data ? { key, data } : null;
  }

  /** Stores `data` under a new ID; returns the Set-Cookie value that carries it. */
  create(data: ShopSession): string {
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(keyOf(id), data);
    return `sid=${id}; Path=/; HttpOnly; SameSite=Lax`;
  }

  /** A login: the session moves to a new ID; returns the Set-Cookie value. */
  regenerate(s: FloorSession): string {
    this.#sessions.delete(s.key);
    return this.create(s.data);
  }
}

function keyOf(id: string): string {
  return hash('sha256', id, 'base64url');
}
