/**
 * The stacks a benchmark can run: a framework (node:http, Express, Fastify), a session layer (none,
 * Tether, express-session, @fastify/session) and a store. Each stack names its baseline, the same
 * framework without sessions, so session overhead = its CPU per request minus the baseline's.
 * @module
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type Framework = 'node' | 'express' | 'fastify';
/** 'floor' is not a session layer: the cookie parse, SHA-256 and Map lookup any layer keyed by a hash of the ID pays (bench/stacks/floor.ts). */
export type Layer = 'none' | 'floor' | 'tether' | 'express-session' | 'fastify-session';
/** 'tiered' is TieredStore's default consistency over Redis ('fenced': a PING per read batch); 'tiered-eventual' reads locally with no round trip. */
export type StoreKind = 'none' | 'memory' | 'sqlite' | 'redis' | 'tiered' | 'tiered-eventual';

export interface StackSpec {
  id: string;
  label: string;
  framework: Framework;
  layer: Layer;
  store: StoreKind;
  /** The stack without sessions on the same framework. */
  baseline: string;
  /** Name of the session cookie the stack sets (for parsing Set-Cookie). */
  cookieName: string;
}

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Tether stores written by other work may not exist yet in a checkout; such stacks are left out, and said so. */
export function storeAvailable(kind: StoreKind): boolean {
  if (kind === 'none' || kind === 'memory') return true;
  const folders: string[] = kind.startsWith('tiered') ? ['tiered', 'redis'] : [kind];
  return folders.every((f) => existsSync(`${root}src/stores/${f}/index.ts`));
}

const bare = (framework: Framework, label: string): StackSpec => ({
  id: `${framework}-bare`, label, framework, layer: 'none', store: 'none', baseline: `${framework}-bare`, cookieName: 'sid',
});
const tether = (framework: Framework, store: StoreKind, label: string): StackSpec => ({
  id: `tether-${framework}-${store}`, label, framework, layer: 'tether', store, baseline: `${framework}-bare`, cookieName: 'sid',
});

export const STACKS: readonly StackSpec[] = [
  bare('node', 'node:http (no sessions)'),
  bare('fastify', 'Fastify (no sessions)'),
  bare('express', 'Express (no sessions)'),
  { id: 'fastify-floor', label: 'Floor: cookie + SHA-256 + Map (Fastify)', framework: 'fastify', layer: 'floor', store: 'none', baseline: 'fastify-bare', cookieName: 'sid' },
  { id: 'express-floor', label: 'Floor: cookie + SHA-256 + Map (Express)', framework: 'express', layer: 'floor', store: 'none', baseline: 'express-bare', cookieName: 'sid' },
  { id: 'express-session-memory', label: 'express-session + MemoryStore', framework: 'express', layer: 'express-session', store: 'memory', baseline: 'express-bare', cookieName: 'connect.sid' },
  { id: 'express-session-redis', label: 'express-session + connect-redis', framework: 'express', layer: 'express-session', store: 'redis', baseline: 'express-bare', cookieName: 'connect.sid' },
  { id: 'fastify-session-redis', label: '@fastify/session + connect-redis', framework: 'fastify', layer: 'fastify-session', store: 'redis', baseline: 'fastify-bare', cookieName: 'sessionId' },
  tether('node', 'memory', 'Tether node:http + memory'),
  tether('express', 'memory', 'Tether Express + memory'),
  tether('express', 'sqlite', 'Tether Express + SQLite'),
  tether('express', 'redis', 'Tether Express + Redis'),
  tether('express', 'tiered', 'Tether Express + tiered/Redis (fenced)'),
  tether('express', 'tiered-eventual', 'Tether Express + tiered/Redis (eventual)'),
  tether('fastify', 'memory', 'Tether Fastify + memory'),
  tether('fastify', 'sqlite', 'Tether Fastify + SQLite'),
  tether('fastify', 'redis', 'Tether Fastify + Redis'),
  tether('fastify', 'tiered', 'Tether Fastify + tiered/Redis (fenced)'),
  tether('fastify', 'tiered-eventual', 'Tether Fastify + tiered/Redis (eventual)'),
];

/** Width of the longest stack id: the column the console output pads ids to. */
export const ID_WIDTH = Math.max(...STACKS.map((s) => s.id.length));

export function stackById(id: string): StackSpec {
  const s = STACKS.find((x) => x.id === id);
  if (!s) throw new Error(`unknown stack "${id}"; known: ${STACKS.map((x) => x.id).join(', ')}`);
  return s;
}

/** Whether the stack keeps its sessions in a redis-server (whose CPU and commands count too). */
export function usesRedis(s: StackSpec): boolean {
  return s.store === 'redis' || s.store.startsWith('tiered');
}
