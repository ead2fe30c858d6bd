/**
 * Generates an haproxy.cfg for N Tether nodes: cookie persistence (so a browser stays on the node that
 * has its session cached), redispatch and connection-failure retries (so a dead node's users move on),
 * health checks on /healthz (a draining node answers 503 and is taken out before it stops), and timeouts
 * that bound slow clients. Used by `tether haproxy-config`.
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { OptionsInvalidError } from '../core/errors.js';
import { checkOptions } from '../core/options-check.js';
import { TETHER_DEFAULTS } from '../core/options.js';

export interface HaproxyConfigOptions {
  /** Address HAProxy listens on, `host:port`. */
  listen: string;
  /** The nodes, each `host:port`. */
  nodes: readonly string[];
  /** Address of the stats page, `host:port`; omitted: no stats page. */
  stats?: string;
  /**
   * Name of HAProxy's persistence cookie; it must differ from the app's session cookie, which HAProxy
   * would otherwise overwrite and strip from requests. @default 'SRV'
   */
  cookie?: string;
  /** Health check path on each node. @default '/healthz' */
  healthPath?: string;
  /** Milliseconds between health checks, at most 2147483647. @default 2000 */
  checkInterMs?: number;
  /** Milliseconds between checks while a node changes state (after a first failed or passed check), at most 2147483647. @default 500 */
  checkFastInterMs?: number;
  /** Failed checks before a node is marked down, at most 1000. @default 3 */
  fall?: number;
  /** Passed checks before a node is back up, at most 1000. @default 2 */
  rise?: number;
  /** At most 2147483647. @default 4096 */
  maxconn?: number;
}

export const HAPROXY_DEFAULTS = {
  cookie: 'SRV',
  healthPath: '/healthz',
  checkInterMs: 2_000,
  checkFastInterMs: 500,
  fall: 3,
  rise: 2,
  maxconn: 4096,
  timeouts: {
    connect: '5s',
    client: '30s',
    server: '30s',
    /** Bound on receiving a whole request head (slowloris). */
    httpRequest: '10s',
    /** How long an idle client connection is kept between requests: Node's own default (S52: 5 s). */
    httpKeepAlive: '5s',
    queue: '30s',
    /** How long an upgraded connection (a WebSocket) may stay idle. */
    tunnel: '1h',
  },
} as const;

/**
 * The longest time HAProxy accepts in its configuration (2^31 − 1 ms, about 24.8 days); a longer one is
 * refused as a timer overflow and the whole configuration with it.
 */
export const HAPROXY_MAX_MS = 2_147_483_647;
/** Most checks `fall` and `rise` may count. HAProxy reads them into an int, so a larger number wraps silently. */
export const HAPROXY_MAX_CHECKS = 1000;
/** HAProxy reads maxconn into an int: a larger number wraps silently instead of being refused. */
const HAPROXY_MAX_INT = 2_147_483_647;

/**
 * Cookie names HAProxy must not take: the app's session cookie with Tether's default name ('sid', or
 * '__Host-sid' when Secure). With `insert indirect` HAProxy overwrites a cookie of its own name in
 * responses and removes it from requests, so the app would never see its session again.
 */
const SESSION_COOKIE_NAMES: readonly string[] = Object.freeze([TETHER_DEFAULTS.cookieName, `__Host-${TETHER_DEFAULTS.cookieName}`]);

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;
const COOKIE = /^[A-Za-z0-9_-]{1,64}$/;
// URL path characters HAProxy's configuration parser leaves alone in an unquoted word. It reads quotes and
// backslashes as quoting (a `'` pair vanishes, a lone one is an error), `#` as the start of a comment and
// whitespace as the end of the word, so those are refused rather than written as the check would change.
const PATH = /^\/[A-Za-z0-9._~!$&()*+,;=:@%/-]*$/;

/** Checks `host:port` (IPv6 in brackets) and returns it unchanged; throws naming `what`. */
export function checkAddress(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new OptionsInvalidError(`${what} must be host:port, e.g. 127.0.0.1:8080`);
  const colon = value.lastIndexOf(':');
  if (colon === -1 || value.endsWith(']')) throw new OptionsInvalidError(`${what} "${value}" needs a port: host:port, e.g. 127.0.0.1:8080`);
  const host = colon === -1 ? '' : value.slice(0, colon);
  const port = colon === -1 ? '' : value.slice(colon + 1);
  if (host === '' || !(HOSTNAME.test(host) || IPV6.test(host))) {
    throw new OptionsInvalidError(`${what} "${value}" has no valid host (expected host:port, e.g. 127.0.0.1:8080)`);
  }
  // Digits and dots are an IPv4 address or nothing; brackets hold an IPv6 address: HAProxy resolves
  // neither otherwise, and refuses the whole configuration.
  if ((/^[\d.]+$/.test(host) && !isIPv4(host)) || (IPV6.test(host) && !isIPv6(host.slice(1, -1)))) {
    throw new OptionsInvalidError(`${what} "${value}" is not a valid IP address (expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080)`);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new OptionsInvalidError(`${what} "${value}" needs a port between 1 and 65535`);
  }
  return value;
}

/**
 * The form of a checked `host:port` two spellings of one address share: the host as a URL holds it
 * (lower case, IPv4 and IPv6 in canonical form) and the port without leading zeros.
 */
function addressKey(value: string): string {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon);
  const port = Number(value.slice(colon + 1));
  try {
    return `${new URL(`http://${host}/`).hostname}:${port}`;
  } catch {
    return `${host.toLowerCase()}:${port}`;
  }
}

/** The addresses a checked host:port's host names: `localhost` both loopback addresses, any other itself. */
function hostsOf(value: string): { port: number; hosts: string[]; wildcard: boolean } {
  const key = addressKey(value);
  const colon = key.lastIndexOf(':');
  const host = key.slice(0, colon);
  const hosts = host === 'localhost' ? ['127.0.0.1', '[::1]'] : [host];
  return { port: Number(key.slice(colon + 1)), hosts, wildcard: host === '0.0.0.0' || host === '[::]' };
}

function isLoopback(host: string): boolean {
  return host === '[::1]' || /^127\./.test(host);
}

/** Whether a bind on `bind` takes connections for `target`: the same address, or a wildcard bind and a loopback target. */
function reaches(bind: string, target: string): boolean {
  const b = hostsOf(bind);
  const t = hostsOf(target);
  if (b.port !== t.port) return false;
  return t.hosts.some((h) => b.hosts.includes(h) || (b.wildcard && isLoopback(h)));
}

/** Whether two binds on this machine would share connections: the same port on one address, or a wildcard. */
function bindsOverlap(a: string, b: string): boolean {
  const x = hostsOf(a);
  const y = hostsOf(b);
  return x.port === y.port && (x.wildcard || y.wildcard || x.hosts.some((h) => y.hosts.includes(h)));
}

const upTo = (max: number, what: string) => (v: unknown): string | null =>
  (Number.isSafeInteger(v) && (v as number) > 0 && (v as number) <= max ? null : `a positive integer ${what}, at most ${max}`);

const ms = (n: number): string => (n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`);

/** The whole haproxy.cfg as text. Throws OPTIONS_INVALID with a precise message on a bad argument. */
export function haproxyConfig(options: HaproxyConfigOptions): string {
  checkOptions('haproxy-config', options, {
    listen: 'string', nodes: 'stringArray', stats: 'string', cookie: 'string', healthPath: 'string',
    checkInterMs: upTo(HAPROXY_MAX_MS, 'of milliseconds (about 24.8 days, the longest time HAProxy accepts)'),
    checkFastInterMs: upTo(HAPROXY_MAX_MS, 'of milliseconds (about 24.8 days, the longest time HAProxy accepts)'),
    fall: upTo(HAPROXY_MAX_CHECKS, 'of checks'), rise: upTo(HAPROXY_MAX_CHECKS, 'of checks'),
    maxconn: upTo(HAPROXY_MAX_INT, 'of connections'),
  });
  const d = HAPROXY_DEFAULTS;
  const listen = checkAddress(options.listen, '--listen');
  if (!Array.isArray(options.nodes) || options.nodes.length === 0) {
    throw new OptionsInvalidError('--nodes needs at least one host:port (comma-separated)');
  }
  const nodes = options.nodes.map((n, i) => checkAddress(n, `--nodes entry ${i + 1}`));
  // Compared in one spelling: 127.0.0.1:03001 is the same node as 127.0.0.1:3001, and HAProxy would
  // balance to it twice.
  const keys = nodes.map(addressKey);
  const dupAt = keys.findIndex((k, i) => keys.indexOf(k) !== i);
  if (dupAt !== -1) {
    const first = nodes[keys.indexOf(keys[dupAt]!)]!;
    const again = nodes[dupAt]!;
    throw new OptionsInvalidError(first === again ? `--nodes lists ${first} twice` : `--nodes lists ${first} twice (also as ${again})`);
  }
  // HAProxy would proxy to itself: a node that is the address it listens on, however spelt.
  const self = nodes.find((n) => reaches(listen, n));
  if (self !== undefined) throw new OptionsInvalidError(self === listen ? `--listen ${listen} is also one of --nodes` : `--listen ${listen} is also one of --nodes (as ${self})`);
  const stats = options.stats === undefined ? undefined : checkAddress(options.stats, '--stats');
  if (stats !== undefined && (bindsOverlap(stats, listen) || nodes.some((n) => reaches(stats, n)))) throw new OptionsInvalidError(`--stats ${stats} is already used`);
  const cookie = options.cookie ?? d.cookie;
  if (!COOKIE.test(cookie)) throw new OptionsInvalidError('--cookie must be 1–64 letters, digits, "_" or "-"');
  if (SESSION_COOKIE_NAMES.includes(cookie)) {
    throw new OptionsInvalidError(`--cookie ${cookie} is the name of Tether's session cookie: HAProxy would overwrite it and strip it from requests, `
      + 'so every session would be lost. Choose another name (the default is SRV)');
  }
  const healthPath = options.healthPath ?? d.healthPath;
  if (!PATH.test(healthPath)) {
    throw new OptionsInvalidError(`--health-path "${healthPath}" must be a path starting with "/" without spaces, quotes, backslashes or "#" `
      + '(HAProxy\'s configuration parser would read them as syntax)');
  }
  const inter = options.checkInterMs ?? d.checkInterMs;
  const fastinter = options.checkFastInterMs ?? d.checkFastInterMs;
  const fall = options.fall ?? d.fall;
  const rise = options.rise ?? d.rise;
  const t = d.timeouts;

  const lines = [
    `# haproxy.cfg for ${nodes.length} Tether node(s), generated by \`tether haproxy-config\`.`,
    '# Every node must share the session store and the signing secrets; see docs/deploy.md.',
    '',
    'global',
    `    maxconn ${options.maxconn ?? d.maxconn}`,
    '    log stdout format raw local0 info',
    '',
    'defaults',
    '    mode http',
    '    log global',
    '    option httplog',
    '    option dontlognull',
    '    option forwardfor',
    `    timeout connect ${t.connect}`,
    `    timeout client ${t.client}`,
    `    timeout server ${t.server}`,
    `    timeout http-request ${t.httpRequest}`,
    `    timeout http-keep-alive ${t.httpKeepAlive}`,
    `    timeout queue ${t.queue}`,
    '    # Once a connection is upgraded (a WebSocket), this replaces the client and server timeouts.',
    `    timeout tunnel ${t.tunnel}`,
    '    # A request is retried only when the connection to a node failed, so it never reached the node:',
    '    # retrying after a timeout or an empty response could apply a POST twice.',
    '    retries 3',
    '    retry-on conn-failure',
    '    # The last retry goes to another node; a node that is down loses its persistent clients to the others.',
    '    option redispatch',
    '',
    'frontend tether_in',
    `    bind ${listen}`,
    '    default_backend tether_nodes',
    '',
    'backend tether_nodes',
    '    balance roundrobin',
    `    cookie ${cookie} insert indirect nocache httponly`,
    `    option httpchk GET ${healthPath}`,
    '    # A draining node answers 503 here, so it is taken out (fall checks) while it still serves. Once a check',
    '    # fails, the next ones come every fastinter: a node is out within inter + (fall - 1) * fastinter.',
    '    http-check expect status 200',
    `    default-server inter ${ms(inter)} fastinter ${ms(fastinter)} fall ${fall} rise ${rise}`,
    ...nodes.map((n, i) => `    server node${i + 1} ${n} check cookie node${i + 1}`),
  ];
  if (stats !== undefined) {
    lines.push('', 'listen stats', `    bind ${stats}`, '    stats enable', '    stats uri /', '    stats refresh 5s', '    stats show-legends');
  }
  return `${lines.join('\n')}\n`;
}
