/**
 * Copy-on-write views of shared decoded session data. A request's `session.data` is a draft over the
 * decoded envelope that other requests of the session share: reading it copies nothing, the first
 * change to an object or array copies that one node (and its ancestors) shallowly, and at commit the
 * draft is finished into plain data that reuses every untouched subtree of the shared original
 * (decoded.ts `jsonExact`). A request that only reads its session pays for no copy and no
 * comparison: the draft knows it changed nothing.
 *
 * Drafts are made only over plain JSON values (what the JSON codec decodes to). The shared original
 * is never changed through a draft: every write lands in the node's own copy.
 * @module
 */

import { inspect } from 'node:util';
import type { InspectOptionsStylized } from 'node:util';
import { SessionKeyInvalidError } from './errors.js';

/**
 * Keys no object of session data may be given (`session.set()`, or any write through a draft):
 * `__proto__` would swap the object's prototype (and JSON would then drop what it holds), and all
 * three reach prototypes when data is merged elsewhere.
 */
export const FORBIDDEN_KEYS: ReadonlySet<PropertyKey> = new Set<PropertyKey>(['__proto__', 'constructor', 'prototype']);

type Container = Record<string, unknown> | unknown[];

/** A draft node: one object or array of the original, and its copy once changed. */
class Node {
  /** The node's own shallow copy, made at its first change; its entries may be child drafts. */
  copy: Container | null = null;
  /**
   * Child drafts handed out while the node was unchanged: the first under `firstKey` (most reads
   * draft one child, and a Map costs more than the node), any others by key.
   */
  firstKey = '';
  first: Node | null = null;
  children: Map<string, Node> | null = null;
  readonly proxy: Container;
  /** The draft's top node: it counts the writes made through any node under it. */
  readonly root: Node;
  /** Writes (set, delete, define) through this draft and every node under it; kept on the root only. */
  writes = 0;
  /**
   * An object or array that is not a draft was written into this draft or a node under it (kept on the
   * root only): changes made to it later, through a reference to it, are not counted in `writes`.
   */
  plain = false;

  constructor(readonly base: Container, readonly parent: Node | null) {
    this.root = parent === null ? this : parent.root;
    // The target is what Array.isArray and the invariants of a proxy see: an array for an array.
    this.proxy = new Proxy((Array.isArray(base) ? [this] : this) as Container, handler);
  }

  /** util.inspect (console.log) shows a proxy's target: it finds this and shows the data instead. */
  declare [inspect.custom]: typeof show;
}
Object.defineProperty(Node.prototype, inspect.custom, { value: show });

/**
 * Called by util.inspect, which shows a proxy's target. An object's target is its node, and `this` is
 * then the draft. An array's target is an array holding its node, so the node is shown as that array's
 * one element: it shows its elements, and the brackets are the target's.
 */
function show(this: object, depth: number, options: InspectOptionsStylized): string {
  if (this instanceof Node) {
    const text = inspect(plain(this), { ...options, depth: depth + 1 });
    return Array.isArray(this.base) ? text.slice(1, -1).trim().replaceAll('\n  ', '\n') : text;
  }
  return inspect(plain(draftNode(this)!), { ...options, depth });
}

/** The data a node stands for now, as plain values (what JSON would keep aside). */
function plain(node: Node): unknown {
  const src = node.copy ?? node.base;
  const out: Record<string, unknown> | unknown[] = Array.isArray(src) ? [] : {};
  for (const k of Object.keys(src)) {
    const v = (src as Record<string, unknown>)[k];
    const n = v !== null && typeof v === 'object' ? draftNode(v) : undefined;
    (out as Record<string, unknown>)[k] = n !== undefined ? plain(n) : v;
  }
  return out;
}

/** Read through a draft, answers its node; on anything else, undefined. */
const NODE = Symbol('tether.draft');

/** Objects and arrays a draft is made over: exactly what JSON decodes to. */
function draftable(v: unknown): v is Container {
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return true;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Gives `node` its own copy (and every ancestor theirs), keeping the children handed out. */
function change(node: Node): Container {
  if (node.copy !== null) return node.copy;
  const base = node.base;
  const copy = (Array.isArray(base) ? base.slice()
    : Object.getPrototypeOf(base) === null ? Object.assign(Object.create(null), base) : { ...base }) as Record<string, unknown>;
  if (node.first !== null) {
    copy[node.firstKey] = node.first.proxy;
    node.first = null;
  }
  if (node.children !== null) {
    for (const [k, child] of node.children) copy[k] = child.proxy;
    node.children = null;
  }
  node.copy = copy;
  if (node.parent !== null) change(node.parent);
  return copy;
}

function nodeOf(target: object): Node {
  return (Array.isArray(target) ? target[0] : target) as Node;
}

/** The draft of `value`, found under `key` of `node` and still shared with the original. */
function child(node: Node, key: string, value: Container): Container {
  if (node.copy !== null) {
    const c = new Node(value, node);
    (node.copy as Record<string, unknown>)[key] = c.proxy;
    return c.proxy;
  }
  if (node.first === null) {
    node.firstKey = key;
    return (node.first = new Node(value, node)).proxy;
  }
  if (node.firstKey === key) return node.first.proxy;
  node.children ??= new Map();
  let c = node.children.get(key);
  if (c === undefined) node.children.set(key, c = new Node(value, node));
  return c.proxy;
}

/** What `get` hands out for `key`: a value still shared with the original is drafted first. */
function read(node: Node, src: Record<string, unknown>, key: string): unknown {
  const v = src[key];
  return draftable(v) && v === (node.base as Record<string, unknown>)[key] ? child(node, key, v) : v;
}

/** Checks and counts a write of `value` under `key` through `node` (see Node.writes and Node.plain). */
function writing(node: Node, key: PropertyKey, value: unknown): void {
  if (FORBIDDEN_KEYS.has(key)) throw new SessionKeyInvalidError(String(key));
  const root = node.root;
  root.writes++;
  if (value !== null && typeof value === 'object' && draftNode(value) === undefined) root.plain = true;
}

const handler: ProxyHandler<Container> = {
  get(t, key, receiver) {
    const node = nodeOf(t);
    if (key === NODE) return node;
    const src = (node.copy ?? node.base) as Record<PropertyKey, unknown>;
    if (typeof key !== 'string' || !Object.hasOwn(src, key)) return Reflect.get(src, key, receiver);
    return read(node, src, key);
  },
  set(t, key, value) {
    const node = nodeOf(t);
    writing(node, key, value);
    (change(node) as Record<PropertyKey, unknown>)[key] = value;
    return true;
  },
  deleteProperty(t, key) {
    const node = nodeOf(t);
    node.root.writes++;
    return Reflect.deleteProperty(change(node), key);
  },
  defineProperty(t, key, desc) {
    const node = nodeOf(t);
    writing(node, key, desc.value);
    return Reflect.defineProperty(change(node), key, desc);
  },
  has(t, key) {
    const node = nodeOf(t);
    return key in (node.copy ?? node.base);
  },
  ownKeys(t) {
    const node = nodeOf(t);
    return Reflect.ownKeys(node.copy ?? node.base);
  },
  getOwnPropertyDescriptor(t, key) {
    const node = nodeOf(t);
    const src = node.copy ?? node.base;
    // An array's length is what its target (an array) has too; anything else is reported configurable,
    // as the target does not hold it.
    if (key === 'length' && Array.isArray(src)) return { value: src.length, writable: true, enumerable: false, configurable: false };
    const d = Reflect.getOwnPropertyDescriptor(src, key);
    if (d === undefined) return undefined;
    if (typeof key === 'string' && 'value' in d) d.value = read(node, src as Record<string, unknown>, key);
    d.configurable = true;
    return d;
  },
  getPrototypeOf(t) {
    return Object.getPrototypeOf(nodeOf(t).base) as object | null;
  },
  preventExtensions() {
    return false;
  },
  setPrototypeOf() {
    return false;
  },
};

/** A draft over `base`, which it never changes. */
export function draft<V extends Container>(base: V): V {
  return new Node(base, null).proxy as V;
}

/**
 * How many writes were made through the draft `d` and the drafts under it (each set, delete or
 * define counts, whether or not it changed a value); undefined when `d` is not a draft.
 */
export function draftWrites(d: object): number | undefined {
  return draftNode(d)?.root.writes;
}

/** Whether an object or array that is not a draft was written into the draft `d` (see Node.plain). */
export function draftHoldsPlain(d: object): boolean {
  return draftNode(d)?.root.plain === true;
}

/** Whether anything was changed through the draft `d` (or the drafts under it). */
export function draftChanged(d: object): boolean {
  const node = draftNode(d);
  return node !== undefined && node.copy !== null;
}

function draftNode(value: object): Node | undefined {
  return (value as Record<PropertyKey, unknown>)[NODE] as Node | undefined;
}

/**
 * What a draft stands for now: its original while unchanged (`copy` null), else its own shallow copy,
 * whose entries are plain values, drafts, or the original's entries where `copy[k] === base[k]`.
 * Undefined for a value that is not a draft.
 */
export function draftParts(value: object): { readonly base: Container; readonly copy: Container | null } | undefined {
  return draftNode(value);
}
