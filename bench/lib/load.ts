/**
 * The load generator: autocannon in its own process, so the server under test never shares an event
 * loop with the client. The harness sends `{ type: 'run', … }` over IPC and gets `{ type: 'result', … }`.
 *
 * Static runs (read, write) rotate over the given sessions with prebuilt requests; each connection
 * cycles over its own slice of them, so no two connections hit one session at the same moment. Login runs pick the next
 * session from a shared pool and replace its cookie and CSRF token from the response (the session's ID
 * changed), and send the updated pool back. Latency is taken from every response's own timing (autocannon's
 * histogram rounds to whole milliseconds).
 * @module
 */
import autocannon from 'autocannon';

export interface Credential {
  cookie: string;
  csrf: string;
}

export interface RunRequest {
  type: 'run';
  seq: number;
  url: string;
  method: 'GET' | 'POST';
  path: string;
  connections: number;
  durationS: number;
  sessions: Credential[];
  /** 'rotate': fixed requests; 'login': the cookie and token change with every response. */
  mode: 'rotate' | 'login';
  cookieName: string;
}

export interface RunResult {
  type: 'result';
  seq: number;
  responses: number;
  non2xx: number;
  errors: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  sessions?: Credential[];
  /** Login pool entries whose request was in flight when the run stopped: their cookie may be stale. */
  stale?: number[];
}

function headersOf(c: Credential): Record<string, string> {
  return { cookie: c.cookie, 'x-csrf-token': c.csrf };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** `name=value` of the session cookie in a Set-Cookie header, if it sets one (and does not clear it). */
function cookieFrom(header: unknown, name: string): string | null {
  const list = Array.isArray(header) ? header : typeof header === 'string' ? [header] : [];
  for (const line of list as string[]) {
    const pair = line.split(';', 1)[0]!;
    if (pair.startsWith(name + '=') && pair.length > name.length + 1) return pair;
  }
  return null;
}

async function run(req: RunRequest): Promise<RunResult> {
  const pool = req.sessions.map((s) => ({ ...s }));
  const base = { method: req.method, path: req.path };
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  let next = 0;
  let clientNo = 0;
  const inFlight = new Set<number>();
  const stride = Math.max(1, Math.floor(pool.length / req.connections));
  const opts: autocannon.Options = {
    url: req.url,
    connections: req.connections,
    duration: req.durationS,
    // autocannon checks for the end of a run once per sample (1 s by default): sample every 50 ms so
    // sub-second passes end on time.
    sampleInt: 50,
    timeout: 10,
  };
  if (req.mode === 'rotate') {
    // Each connection cycles over its own slice of the sessions: all of them are used, and no two
    // connections ever hold the same session at once.
    opts.setupClient = (client) => {
      const offset = (clientNo++ * stride) % pool.length;
      const slice = pool.slice(offset, offset + stride);
      client.setRequests(slice.map((c) => ({ ...base, headers: headersOf(c) })));
    };
    opts.requests = [{ ...base, headers: headersOf(pool[0]!) }];
  } else {
    opts.requests = [{
      ...base,
      setupRequest: (r, context) => {
        const i = next++ % pool.length;
        (context as { i: number }).i = i;
        inFlight.add(i);
        return { ...r, headers: headersOf(pool[i]!) };
      },
      onResponse: (status, body, context, headers) => {
        const i = (context as { i: number }).i;
        inFlight.delete(i);
        if (status !== 200) return;
        const cookie = cookieFrom(headers?.['set-cookie'], req.cookieName);
        if (cookie) pool[i]!.cookie = cookie;
        const m = /"csrf":"([^"]+)"/.exec(body);
        if (m) pool[i]!.csrf = m[1]!;
      },
    }];
  }
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(opts, (err, res) => (err ? reject(err as Error) : resolve(res)));
    instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
      if (n === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[n++] = ms;
    });
  });
  const sorted = latencies.subarray(0, n).sort();
  const responses = result['2xx'] + result.non2xx;
  return {
    type: 'result',
    seq: req.seq,
    responses,
    non2xx: result.non2xx,
    errors: result.errors,
    durationS: result.duration,
    rps: responses / result.duration,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    ...(req.mode === 'login' ? { sessions: pool, stale: [...inFlight] } : {}),
  };
}

process.on('message', (msg: RunRequest) => {
  if (msg.type !== 'run') return;
  run(msg).then(
    (res) => process.send?.(res),
    (err: unknown) => process.send?.({ type: 'error', seq: msg.seq, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
