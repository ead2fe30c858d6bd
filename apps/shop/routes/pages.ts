/**
 * The shop's pages and assets: a fixed list of files read once at start-up and served from memory,
 * so no request path ever reaches the file system. HTML goes out with a strict Content-Security-Policy.
 * @module
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const PUBLIC_DIR = new URL('../public/', import.meta.url);

/** URL → page file. */
const PAGES: ReadonlyArray<[string, string]> = [
  ['/', 'index.html'],
  ['/products/:id', 'product.html'],
  ['/cart', 'cart.html'],
  ['/login', 'login.html'],
  ['/register', 'login.html'],
  ['/checkout', 'checkout.html'],
  ['/orders', 'orders.html'],
  ['/account', 'account.html'],
  ['/admin', 'admin.html'],
];

const ASSETS = ['app.js', 'theme.js', 'art.js', 'catalog.js', 'product.js', 'cart.js', 'auth.js', 'checkout.js', 'orders.js', 'account.js', 'admin.js', 'style.css', 'favicon.svg'] as const;

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

export const PAGE_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

function load(relative: string): StaticFile {
  const body = readFileSync(new URL(relative, PUBLIC_DIR));
  const ext = relative.slice(relative.lastIndexOf('.') + 1);
  return { body, type: TYPES[ext]!, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 20)}"` };
}

function send(req: FastifyRequest, reply: FastifyReply, file: StaticFile, status = 200): FastifyReply {
  // Revalidate every time: a new release must show at once, and the ETag makes that cheap.
  reply.header('cache-control', 'no-cache').header('etag', file.etag).type(file.type);
  if (file.type.startsWith('text/html')) reply.header('content-security-policy', PAGE_CSP).header('x-frame-options', 'DENY');
  if (status === 200 && req.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.code(status).send(file.body);
}

/**
 * Pages and assets are the same for everyone (each page asks /api/session for the visitor's state): they
 * open no session, so they cost no store call and still load when the session store is down, where the
 * page can say so.
 */
const NO_SESSION = { tether: { session: false } };

export function pageRoutes(app: FastifyInstance): { notFoundPage: StaticFile } {
  const pages = new Map<string, StaticFile>();
  for (const [, file] of PAGES) if (!pages.has(file)) pages.set(file, load(file));
  for (const [url, file] of PAGES) app.get(url, { config: NO_SESSION }, async (req, reply) => send(req, reply, pages.get(file)!));
  const assets = new Map<string, StaticFile>(ASSETS.map((name) => [name, load(`assets/${name}`)]));
  app.get<{ Params: { name: string } }>('/assets/:name', { config: NO_SESSION }, async (req, reply) => {
    const file = assets.get(req.params.name);
    if (!file) return reply.callNotFound();
    return send(req, reply, file);
  });
  const favicon = assets.get('favicon.svg')!;
  app.get('/favicon.ico', { config: NO_SESSION }, async (req, reply) => send(req, reply, favicon));
  return { notFoundPage: load('404.html') };
}

/**
 * Whether a path is the API's: `/api` and anything under it, in any letter case (routes match case by
 * case, so `/API/cart` names no route, but its caller is a program that reads JSON, not a browser).
 */
export function isApiPath(url: string): boolean {
  if (url.slice(0, 4).toLowerCase() !== '/api') return false;
  return url.length === 4 || url[4] === '/' || url[4] === '?';
}

/** For the not-found handler: a browser navigating to an unknown page gets a page, API clients JSON. */
export function sendNotFoundPage(req: FastifyRequest, reply: FastifyReply, page: StaticFile): FastifyReply | null {
  const accept = req.headers.accept ?? '';
  if (req.method !== 'GET' || isApiPath(req.url) || !accept.includes('text/html')) return null;
  return send(req, reply, page, 404);
}
