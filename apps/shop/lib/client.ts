/**
 * Who a per-address limit counts: an IPv4 client by its address, an IPv6 client by its /64. One
 * subscriber, one host even, holds a whole /64 (RFC 6177 assigns at least that to a site, and privacy
 * addresses change within it at will), so counting each IPv6 address apart would give whoever sends
 * from a /64 as many allowances as addresses they care to use. The engine's `newSessions` counts the
 * same way.
 * @module
 */
import ipaddr from 'ipaddr.js';

const IPV6_CLIENT_PREFIX = 64;

/** The key `address` is counted under: itself (an IPv4-mapped IPv6 address as IPv4), or its IPv6 /64 as CIDR. */
export function clientKey(address: string): string {
  const zone = address.indexOf('%');
  const plain = zone < 0 ? address : address.slice(0, zone);
  if (!ipaddr.isValid(plain)) return address;
  const ip = ipaddr.process(plain);
  if (ip.kind() === 'ipv4') return ip.toString();
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${ip.toString()}/${IPV6_CLIENT_PREFIX}`).toString()}/${IPV6_CLIENT_PREFIX}`;
}
