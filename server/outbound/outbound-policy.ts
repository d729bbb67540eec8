// Which outbound targets steps may reach. A tenant who writes an Application decides the URL an
// http-request or github-actions step calls, and the executor calls it with its own network
// position: inside the cluster it can reach the cloud metadata service, the kube-apiserver, other
// tenants' Services and the node's loopback. So by default those are refused; the operator lists
// what may be reached anyway. http-client.ts enforces this on every connection it opens (after
// DNS, on every redirect); this module only decides.
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/** How the operator allows a target; shown in every refusal so the message says what to do. */
export const ALLOW_HINT = "the executor's outbound allow-list (addon parameter outboundAllow, executor flag --outbound-allow or env STEP_EXECUTOR_OUTBOUND_ALLOW)";
const LINK_LOCAL_HINT = "the executor flag --allow-link-local (env STEP_EXECUTOR_ALLOW_LINK_LOCAL)";

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];
const cidrs = (...list: string[]): Cidr[] => list.map((c) => ipaddr.parseCIDR(c));

/** Link-local, incl. the cloud metadata services (169.254.169.254, AWS's fd00:ec2::254): refused unless --allow-link-local. */
const LINK_LOCAL = cidrs("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128");
/** This host: 0.0.0.0 dials the local host on Linux, like 127.0.0.1. */
const LOOPBACK = cidrs("127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128");
/** Private networks, where clusters put pods, Services and nodes: RFC 1918, CGNAT (RFC 6598), IPv6 ULA, local-use NAT64 (RFC 8215). */
const PRIVATE = cidrs("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "64:ff9b:1::/48");
/** Names cluster DNS answers with Service and pod addresses. */
const CLUSTER_SUFFIXES = [".svc", ".cluster.local"];

export type AddressClass = "link-local" | "loopback" | "private" | "public";

/**
 * The one address classifier (the outbound policy, metrics' host classes, link-local checks).
 * An IPv6 address that carries an IPv4 address (see embeddedIPv4) is judged as that IPv4 address.
 */
export function classifyAddress(address: string): AddressClass {
  const a = parseAddress(address);
  const within = (list: Cidr[]) => list.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));
  if (within(LINK_LOCAL)) return "link-local";
  if (within(LOOPBACK)) return "loopback";
  if (within(PRIVATE)) return "private";
  return "public";
}

/** `localhost` or a loopback address: the only hosts a credential may be sent to over plain http. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "");
  return host.toLowerCase() === "localhost" || (isIP(host) !== 0 && classifyAddress(host) === "loopback");
}

/** The operator's allow-list entry is malformed. */
export class AllowListError extends Error {}

export interface OutboundPolicyOptions {
  /** Link-local targets (cloud metadata) are refused unless this is set; the allow-list cannot lift it. */
  allowLinkLocal: boolean;
  /** CIDRs or addresses, host names, and `*.suffix` (any name under suffix). */
  allow: readonly string[];
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

export class OutboundPolicy {
  private readonly cidrs: Cidr[] = [];
  private readonly names = new Set<string>();
  private readonly suffixes: string[] = [];

  constructor(readonly options: OutboundPolicyOptions) {
    for (const raw of options.allow) {
      const entry = raw.trim().toLowerCase().replace(/\.$/, "");
      if (!entry) continue;
      if (ipaddr.isValidCIDR(entry)) this.cidrs.push(ipaddr.parseCIDR(entry));
      else if (ipaddr.isValid(entry)) {
        const a = ipaddr.process(entry);
        this.cidrs.push([a, a.kind() === "ipv4" ? 32 : 128]);
      } else if (entry.startsWith("*.") && HOST_NAME.test(entry.slice(2))) this.suffixes.push(entry.slice(1));
      else if (HOST_NAME.test(entry)) this.names.add(entry);
      else throw new AllowListError(`outbound allow-list entry "${raw}" is not a CIDR (10.0.0.0/8), an IP address, a host name or *.suffix`);
    }
  }

  /** Whether the operator listed this host name (exactly, or under a `*.suffix`). */
  private nameAllowed(host: string): boolean {
    return this.names.has(host) || this.suffixes.some((s) => host.endsWith(s));
  }

  /** Listed as written (::1, 64:ff9b::/96) or as the IPv4 address it carries (::ffff:10.0.0.1 by 10.0.0.0/8). */
  private addressAllowed(address: string): boolean {
    const forms = [ipaddr.process(bare(address)), parseAddress(address)];
    return forms.some((a) => this.cidrs.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits)));
  }

  /** Why a host name is refused before it is even looked up (cluster DNS names), or undefined. */
  nameRefusal(host: string): string | undefined {
    const name = normalize(host);
    if (ipaddr.isValid(name) || this.nameAllowed(name)) return undefined;
    const suffix = CLUSTER_SUFFIXES.find((s) => name.endsWith(s));
    if (!suffix) return undefined;
    return `${name} is a cluster-internal name, which the executor refuses by default; to allow it, add "${name}" (or "*${suffix}") to ${ALLOW_HINT}`;
  }

  /**
   * Why connecting to `host` (a name or an address, as in the URL) at `address` (what DNS gave;
   * the host itself for an address) is refused, or undefined when it is allowed.
   */
  refusal(host: string, address: string): string | undefined {
    const name = normalize(host);
    const literal = ipaddr.isValid(name);
    const subject = literal ? `${name} is` : `${name} resolves to ${address}, which is`;
    const cls = classifyAddress(address);
    if (cls === "link-local") {
      if (this.options.allowLinkLocal) return undefined;
      return `${subject} a link-local address (cloud metadata service), which the executor always refuses; an operator can lift this only with ${LINK_LOCAL_HINT}`;
    }
    if (cls === "public" || (!literal && this.nameAllowed(name)) || this.addressAllowed(address)) return undefined;
    const kind = cls === "loopback" ? "a loopback address" : "a private (cluster-internal) address";
    return `${subject} ${kind}, which the executor refuses by default; to allow it, add "${address}"${literal ? "" : ` or "${name}"`} to ${ALLOW_HINT}`;
  }
}

/** Brackets and an IPv6 zone (fe80::1%eth0) off; an IPv6 address carrying an IPv4 address as that IPv4 address. */
function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const a = ipaddr.parse(bare(address));
  return a.kind() === "ipv6" ? embeddedIPv4(a as ipaddr.IPv6) ?? a : a;
}

/**
 * The IPv4 address an IPv6 address leads to, where the IPv6 form is only a way to reach it:
 * IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, incl. :: and ::1), NAT64
 * (64:ff9b::/96, RFC 6052), 6to4 (2002:AABB:CCDD::/16) and Teredo (2001:0::/32, the client
 * address inverted in the last 32 bits). Otherwise 169.254.169.254 would pass as ::a9fe:a9fe.
 */
function embeddedIPv4(a: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const w = a.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const zero = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && (w[5] === 0xffff || w[5] === 0)) return v4(w[6]!, w[7]!);
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return v4(w[6]!, w[7]!);
  if (w[0] === 0x2002) return v4(w[1]!, w[2]!);
  if (w[0] === 0x2001 && w[1] === 0) return v4(~w[6]! & 0xffff, ~w[7]! & 0xffff);
  return undefined;
}

function bare(address: string): string {
  return address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
}

function normalize(host: string): string {
  return host.replace(/^\[|\]$/g, "").toLowerCase().replace(/\.$/, "");
}
