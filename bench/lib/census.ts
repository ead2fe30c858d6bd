/**
 * Redis command census: which commands one request of a scenario sends, told apart by origin. Runs
 * `n` requests one at a time with a MONITOR connection open (outside the measured passes: MONITOR
 * slows Redis down) and counts the commands clients sent (round trips, or pipelined batches) apart
 * from those Lua scripts ran inside Redis.
 * @module
 */
import net from 'node:net';
import type { Credential } from './load.js';
import { request } from './http.js';

export interface Census {
  requests: number;
  /** Commands sent by clients per request (EVALSHA counts once). */
  clientCommands: number;
  /** Commands run inside Lua scripts per request. */
  scriptCommands: number;
  /** Client commands per request, by name, e.g. { evalsha: 1, get: 1 }. */
  byCommand: Record<string, number>;
}

interface Monitor {
  lines: string[];
  close(): void;
}

function monitor(port: number): Promise<Monitor> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let buf = '';
    let ready = false;
    const sock = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('MONITOR: no answer')); }, 5_000);
    sock.setEncoding('utf8');
    sock.on('error', reject);
    sock.on('connect', () => sock.write('MONITOR\r\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let eol: number;
      while ((eol = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, eol);
        buf = buf.slice(eol + 2);
        if (!ready) {
          ready = true;
          clearTimeout(timer);
          resolve({ lines, close: () => sock.destroy() });
        } else {
          lines.push(line);
        }
      }
    });
  });
}

/**
 * `n` sequential requests, counted after two uncounted rounds over the same sessions: the first may
 * touch sessions idle for over a minute (a touch's change notice drops a tier's local copy), the
 * second refills a cache in front of Redis, so the counted round shows the steady state. Login
 * credentials are replaced from each answer (the ID changes).
 */
export async function census(o: {
  redisPort: number; serverPort: number; method: string; path: string; creds: Credential[]; cookieName: string; n: number;
}): Promise<Census> {
  const run = async (count: boolean): Promise<number> => {
    let ok = 0;
    for (let i = 0; i < o.n; i++) {
      const c = o.creds[i % o.creds.length]!;
      const r = await request(o.serverPort, o.method, o.path, { cookie: c.cookie, 'x-csrf-token': c.csrf });
      if (r.status !== 200) continue;
      if (count) ok++;
      const pair = r.setCookie.map((l) => l.split(';', 1)[0]!).find((p) => p.startsWith(o.cookieName + '=') && p.length > o.cookieName.length + 1);
      const csrf = /"csrf":"([^"]+)"/.exec(r.body)?.[1];
      if (pair) c.cookie = pair;
      if (csrf) c.csrf = csrf;
    }
    return ok;
  };
  await run(false);
  await run(false);
  // Let change notices of the warm-up rounds arrive before counting.
  await new Promise((r) => setTimeout(r, 100));
  const mon = await monitor(o.redisPort);
  let sent = 0;
  try {
    sent = await run(true);
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    mon.close();
  }
  const byCommand: Record<string, number> = {};
  let client = 0;
  let script = 0;
  for (const line of mon.lines) {
    const m = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
    if (!m) continue;
    if (m[1] === 'lua') {
      script++;
    } else {
      client++;
      const name = m[2]!.toLowerCase();
      byCommand[name] = (byCommand[name] ?? 0) + 1;
    }
  }
  const per = (x: number): number => (sent ? Math.round((x / sent) * 100) / 100 : 0);
  return {
    requests: sent,
    clientCommands: per(client),
    scriptCommands: per(script),
    byCommand: Object.fromEntries(Object.entries(byCommand).map(([k, v]) => [k, per(v)])),
  };
}
