/**
 * The network a client address belongs to, as a session keeps it for `addressChange`: the address's
 * prefix (by default /24 of IPv4, /48 of IPv6) in CIDR notation, an IPv4-mapped IPv6 address taken as
 * the IPv4 one. A prefix, not the address: a client's address moves within its provider's network
 * (DHCP, carrier-grade NAT, IPv6 privacy addresses) far more often than a stolen cookie stays on the
 * thief's, and a prefix says less about the person.
 * @module
 */
import ipaddr from 'ipaddr.js';

export interface AddressPrefix {
  readonly ipv4: number;
  readonly ipv6: number;
}

/** `address`'s network, e.g. `203.0.113.0/24` or `2001:db8:85a3::/48`; undefined when it is absent or not an IP address. */
export function networkOf(address: string | undefined, prefix: AddressPrefix): string | undefined {
  if (address === undefined || address === '') return undefined;
  const zone = address.indexOf('%');
  const plain = zone < 0 ? address : address.slice(0, zone);
  if (!ipaddr.isValid(plain)) return undefined;
  const ip = ipaddr.process(plain);
  if (ip.kind() === 'ipv4') return `${ipaddr.IPv4.networkAddressFromCIDR(`${ip.toString()}/${prefix.ipv4}`).toString()}/${prefix.ipv4}`;
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${ip.toString()}/${prefix.ipv6}`).toString()}/${prefix.ipv6}`;
}

/**
 * The key a per-client limit counts `address` under: an IPv4 address itself (as `a.b.c.d/32`; an
 * IPv4-mapped IPv6 address as the IPv4 one), an IPv6 address its /64. One subscriber, one host even,
 * holds a whole /64 (RFC 6177 assigns at least that to a site, and privacy addresses change within it
 * at will), so counting each IPv6 address apart gives whoever sends from a /64 as many allowances as
 * addresses they care to use. Undefined when `address` is absent or not an IP address.
 */
export function clientNetwork(address: string | undefined): string | undefined {
  return networkOf(address, CLIENT);
}

const CLIENT: AddressPrefix = { ipv4: 32, ipv6: 64 };
