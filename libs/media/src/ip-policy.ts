import { BlockList, isIPv4, isIPv6 } from 'node:net';

type Family = 'ipv4' | 'ipv6';
type Rule = [network: string, prefix: number, family: Family];

/**
 * Address ranges a worker must never fetch from (SSRF protection), in the order they are checked:
 * the first matching group names the reason, so the narrow groups (cloud metadata, broadcast)
 * come before the wide ones that contain them (link-local, reserved, unique-local).
 */
const GROUPS: ReadonlyArray<[reason: string, rules: Rule[]]> = [
  [
    'cloud metadata',
    [
      ['169.254.169.254', 32, 'ipv4'], // AWS, GCP, Azure, OCI, DigitalOcean...
      ['169.254.170.2', 32, 'ipv4'], // AWS ECS task metadata
      ['100.100.100.200', 32, 'ipv4'], // Alibaba Cloud
      ['fd00:ec2::254', 128, 'ipv6'], // AWS IMDS over IPv6
    ],
  ],
  ['unspecified', [['0.0.0.0', 8, 'ipv4'], ['::', 128, 'ipv6']]],
  ['loopback', [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']]],
  ['private', [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4']]],
  ['carrier-grade NAT', [['100.64.0.0', 10, 'ipv4']]],
  ['link-local', [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']]],
  ['broadcast', [['255.255.255.255', 32, 'ipv4']]],
  ['multicast', [['224.0.0.0', 4, 'ipv4'], ['ff00::', 8, 'ipv6']]],
  ['unique-local', [['fc00::', 7, 'ipv6']]],
  ['site-local', [['fec0::', 10, 'ipv6']]],
  [
    'reserved',
    [
      ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments
      ['192.0.2.0', 24, 'ipv4'], // documentation (TEST-NET-1)
      ['192.88.99.0', 24, 'ipv4'], // 6to4 relay anycast
      ['198.18.0.0', 15, 'ipv4'], // benchmarking
      ['198.51.100.0', 24, 'ipv4'], // documentation (TEST-NET-2)
      ['203.0.113.0', 24, 'ipv4'], // documentation (TEST-NET-3)
      ['240.0.0.0', 4, 'ipv4'], // future use
      ['::', 96, 'ipv6'], // IPv4-compatible (deprecated)
      ['100::', 64, 'ipv6'], // discard-only
      ['2001::', 32, 'ipv6'], // Teredo
      ['2001:2::', 48, 'ipv6'], // benchmarking
      ['2001:10::', 28, 'ipv6'], // ORCHID
      ['2001:20::', 28, 'ipv6'], // ORCHIDv2
      ['2001:db8::', 32, 'ipv6'], // documentation
      ['3fff::', 20, 'ipv6'], // documentation
      ['5f00::', 16, 'ipv6'], // SRv6 SIDs
    ],
  ],
];

const LISTS: ReadonlyArray<[reason: string, list: BlockList]> = GROUPS.map(([reason, rules]) => {
  const list = new BlockList();
  for (const [network, prefix, family] of rules) list.addSubnet(network, prefix, family);
  return [reason, list];
});

function checkLists(ip: string, family: Family): string | undefined {
  for (const [reason, list] of LISTS) {
    if (list.check(ip, family)) return reason;
  }
  return undefined;
}

/** Parses a valid IPv6 text address (no zone, already validated) into its 16 bytes. */
function ipv6Bytes(ip: string): Uint8Array {
  let text = ip;
  const embedded: number[] = [];
  if (text.includes('.')) {
    // trailing dotted IPv4 part, e.g. ::ffff:10.0.0.1 or 64:ff9b::10.0.0.1
    const colon = text.lastIndexOf(':');
    const o = text.slice(colon + 1).split('.').map(Number);
    embedded.push((o[0] << 8) | o[1], (o[2] << 8) | o[3]);
    text = text[colon - 1] === ':' ? text.slice(0, colon + 1) : text.slice(0, colon);
  }
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const halves = text.split('::');
  const head = parse(halves[0]);
  let groups = head;
  if (halves.length > 1) {
    const tail = parse(halves[1]);
    const zeros = new Array<number>(8 - embedded.length - head.length - tail.length).fill(0);
    groups = [...head, ...zeros, ...tail];
  }
  groups.push(...embedded);
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = (g >> 8) & 0xff;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

function v4At(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

const MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]; // ::ffff:0:0/96
const TRANSLATED = [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]; // ::ffff:0:0:0/96 (SIIT)
const NAT64 = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]; // 64:ff9b::/96
const NAT64_LOCAL = [0, 0x64, 0xff, 0x9b, 0, 0x01]; // 64:ff9b:1::/48

/**
 * Returns why an IP address must not be fetched from ('loopback', 'private', 'cloud metadata'...),
 * or undefined when it is a public address. Addresses that embed an IPv4 address (IPv4-mapped,
 * NAT64, 6to4) are judged by that IPv4 address. Anything that is not an IP address is refused.
 */
export function isForbiddenAddress(ip: string): string | undefined {
  let text = ip.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  if (isIPv4(text)) return checkLists(text, 'ipv4');

  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (!isIPv6(text)) return 'not an IP address';

  const bytes = ipv6Bytes(text);
  if (startsWith(bytes, MAPPED) || startsWith(bytes, TRANSLATED)) return checkLists(v4At(bytes, 12), 'ipv4');
  if (startsWith(bytes, NAT64) || startsWith(bytes, NAT64_LOCAL)) {
    return checkLists(v4At(bytes, 12), 'ipv4');
  }
  if (bytes[0] === 0x20 && bytes[1] === 0x02) {
    // 6to4: 2002:AABB:CCDD::/48 routes to the IPv4 address AA.BB.CC.DD
    return checkLists(v4At(bytes, 2), 'ipv4');
  }
  const reason = checkLists(text, 'ipv6');
  if (reason) return reason;
  // Only 2000::/3 is allocated as global unicast; everything else left is reserved.
  if ((bytes[0] & 0xe0) !== 0x20) return 'reserved';
  return undefined;
}
