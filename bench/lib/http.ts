/**
 * The few plain HTTP calls the harness makes itself (seeding sessions, the lost-update race), over a
 * keep-alive agent; the measured load goes through autocannon in its own process instead.
 * @module
 */
import http from 'node:http';
import type { Credential } from './load.js';
import type { StackSpec } from './stacks.js';
import { ROUTES, DUMMY_COOKIE, DUMMY_CSRF } from './workload.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface Reply {
  status: number;
  body: string;
  setCookie: string[];
}

function once(port: number, method: string, path: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, setCookie: res.headers['set-cookie'] ?? [] }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** One request; retried once when a kept-alive socket turns out to be closed (the request never reached the server). */
export async function request(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  try {
    return await once(port, method, path, headers);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ECONNRESET' && code !== 'EPIPE') throw err;
    return once(port, method, path, headers);
  }
}

function credentialOf(spec: StackSpec, r: Reply): Credential {
  const pair = r.setCookie.map((l) => l.split(';', 1)[0]!).find((p) => p.startsWith(spec.cookieName + '='));
  const csrf = /"csrf":"([^"]+)"/.exec(r.body)?.[1];
  if (!pair || !csrf) throw new Error(`${spec.id}: POST ${ROUTES.seed} gave no session cookie (status ${r.status}, body ${r.body.slice(0, 200)})`);
  return { cookie: pair, csrf };
}

/** Creates `count` sessions through the stack's own /seed route; stacks without sessions get stand-ins. */
export async function seedSessions(spec: StackSpec, port: number, count: number, from = 0, parallel = 8): Promise<Credential[]> {
  if (spec.layer === 'none') {
    const r = await request(port, 'POST', `${ROUTES.seed}?i=0`);
    if (r.status !== 200) throw new Error(`${spec.id}: POST ${ROUTES.seed} answered ${r.status}`);
    return Array.from({ length: count }, () => ({ cookie: DUMMY_COOKIE, csrf: DUMMY_CSRF }));
  }
  const out = new Array<Credential>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const r = await request(port, 'POST', `${ROUTES.seed}?i=${from + i}`);
      if (r.status !== 200) throw new Error(`${spec.id}: POST ${ROUTES.seed} answered ${r.status}: ${r.body.slice(0, 200)}`);
      out[i] = credentialOf(spec, r);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  // The session must come back with its data, or the stack measures nothing.
  const check = await request(port, 'GET', ROUTES.read, { cookie: out[0]!.cookie });
  if (!check.body.includes('"items":3')) throw new Error(`${spec.id}: a seeded session did not read back (${check.body})`);
  return out;
}

export interface RaceResult {
  sent: number;
  ok: number;
  statuses: Record<string, number>;
  /** The counter after every request was answered; with no lost update it equals `ok`. */
  final: number;
  lost: number;
}

/** `n` concurrent naive read-modify-writes on one session; lost = answered 200 but not counted. */
export async function race(spec: StackSpec, port: number, n: number): Promise<RaceResult> {
  const [cred] = await seedSessions(spec, port, 1, 999_999, 1);
  const headers = { cookie: cred!.cookie, 'x-csrf-token': cred!.csrf };
  const replies = await Promise.all(Array.from({ length: n }, () => request(port, 'POST', ROUTES.race, headers).catch(() => ({ status: 0, body: '', setCookie: [] }))));
  const statuses: Record<string, number> = {};
  for (const r of replies) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const ok = statuses['200'] ?? 0;
  const after = await request(port, 'GET', ROUTES.read, { cookie: cred!.cookie });
  const final = Number(/"r":(\d+)/.exec(after.body)?.[1] ?? 0);
  return { sent: n, ok, statuses, final, lost: Math.max(0, ok - final) };
}
