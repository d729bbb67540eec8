// The outbound policy (server/outbound/outbound-policy.ts) as server/outbound/http-client.ts enforces it: on the
// address literal, on the address DNS gave at connect time, and on every redirect hop. Every server
// here listens on 127.0.0.1; forbidden targets elsewhere (metadata) are refused before any packet.
import { expect } from "chai";
import { createHttpClient, ForbiddenAddressError, isLinkLocal, type HttpClient, type HttpClientOptions, type LookupFunction } from "../../server/outbound/http-client.js";
import { ConfigError, loadConfig } from "../../server/config.js";
import { hostClass } from "../../server/observe/metrics.js";
import { AllowListError, classifyAddress, OutboundPolicy } from "../../server/outbound/outbound-policy.js";
import { startDns, type LocalDns } from "../fixtures/dns.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";

/** A lookup that fails the test if called: proves a refusal happened before any DNS query. */
const noLookup: LookupFunction = (hostname) => { throw new Error(`unexpected DNS lookup of ${hostname}`); };

async function refusal(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("the request was not refused");
}

/** The refusal a fetch reports (undici wraps connect errors as `fetch failed` with a cause). */
function cause(err: Error): Error {
  return err instanceof ForbiddenAddressError ? err : (err.cause as Error);
}

describe("outbound policy: address classes and the allow-list", () => {
  it("classifies metadata, loopback, private, CGNAT, ULA, IPv4-mapped IPv6 and public addresses", () => {
    expect(classifyAddress("169.254.169.254")).to.equal("link-local");
    expect(classifyAddress("fd00:ec2::254")).to.equal("link-local");
    expect(classifyAddress("fe80::1%eth0")).to.equal("link-local");
    expect(classifyAddress("::ffff:169.254.169.254")).to.equal("link-local");
    expect(classifyAddress("127.0.0.1")).to.equal("loopback");
    expect(classifyAddress("127.9.9.9")).to.equal("loopback");
    expect(classifyAddress("::1")).to.equal("loopback");
    expect(classifyAddress("0.0.0.0")).to.equal("loopback");
    expect(classifyAddress("::ffff:127.0.0.1")).to.equal("loopback");
    for (const a of ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.255", "fc00::1", "fd12:3456::1"]) {
      expect(classifyAddress(a), a).to.equal("private");
    }
    for (const a of ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111"]) expect(classifyAddress(a), a).to.equal("public");
  });

  it("classifies an IPv6 address carrying an IPv4 address as that IPv4 address (compatible, mapped, NAT64, 6to4, Teredo)", () => {
    const cases: [string, string][] = [
      ["::a9fe:a9fe", "link-local"], ["::169.254.169.254", "link-local"], ["::ffff:a9fe:a9fe", "link-local"],
      ["64:ff9b::a9fe:a9fe", "link-local"], ["64:ff9b::169.254.169.254", "link-local"], ["2002:a9fe:a9fe::", "link-local"], ["2002:a9fe:a9fe:1::5", "link-local"],
      ["2001:0:4136:e378:8000:63bf:5601:5601", "link-local"], // Teredo: client 169.254.169.254, inverted
      ["::127.0.0.1", "loopback"], ["::7f00:1", "loopback"], ["64:ff9b::7f00:1", "loopback"], ["2002:7f00:1::", "loopback"], ["::", "loopback"],
      ["::10.0.0.1", "private"], ["64:ff9b::a00:1", "private"], ["2002:c0a8:101::1", "private"], ["64:ff9b:1::1", "private"],
      ["64:ff9b::808:808", "public"], ["2002:808:808::1", "public"], ["2001:4860:4860::8888", "public"],
    ];
    for (const [a, cls] of cases) expect(classifyAddress(a), a).to.equal(cls);
    // The allow-list matches either form: listing the IPv4 address allows its IPv6 spellings, and the reverse.
    const p = new OutboundPolicy({ allowLinkLocal: false, allow: ["127.0.0.1", "64:ff9b::a00:1"] });
    expect(p.refusal("::127.0.0.1", "::127.0.0.1")).to.equal(undefined);
    expect(p.refusal("64:ff9b::a00:1", "64:ff9b::a00:1")).to.equal(undefined);
    expect(p.refusal("::1", "::1")).to.match(/::1 is a loopback address/);
  });

  it("one classifier: metrics' host classes and the link-local check agree with the policy", () => {
    const addresses = ["100.64.0.1", "0.0.0.0", "::ffff:169.254.169.254", "fd00:ec2::254", "::a9fe:a9fe", "64:ff9b::7f00:1", "10.0.0.1", "8.8.8.8", "::1", "fe80::1"];
    for (const a of addresses) {
      const cls = classifyAddress(a);
      expect(hostClass(a), a).to.equal(cls === "public" ? "public-ip" : cls);
      expect(isLinkLocal(a), a).to.equal(cls === "link-local");
    }
    expect(hostClass("100.64.0.1")).to.equal("private");
    expect(hostClass("0.0.0.0")).to.equal("loopback");
    expect(hostClass("[::ffff:169.254.169.254]")).to.equal("link-local");
    expect(hostClass("[fd00:ec2::254]")).to.equal("link-local");
  });

  it("refuses link-local even when the allow-list covers it; only allowLinkLocal lifts that", () => {
    const p = new OutboundPolicy({ allowLinkLocal: false, allow: ["169.254.0.0/16", "0.0.0.0/0"] });
    expect(p.refusal("169.254.169.254", "169.254.169.254")).to.match(/link-local address \(cloud metadata service\), which the executor always refuses.*--allow-link-local/);
    expect(new OutboundPolicy({ allowLinkLocal: true, allow: [] }).refusal("169.254.169.254", "169.254.169.254")).to.equal(undefined);
  });

  it("allows listed CIDRs, addresses, names and *.suffix names, and nothing else private", () => {
    const p = new OutboundPolicy({ allowLinkLocal: false, allow: ["10.1.0.0/16", "192.168.7.7", "hooks.corp.test", "*.svc.cluster.local"] });
    expect(p.refusal("10.1.2.3", "10.1.2.3")).to.equal(undefined);
    expect(p.refusal("10.2.0.1", "10.2.0.1")).to.match(/10\.2\.0\.1 is a private \(cluster-internal\) address, which the executor refuses by default; to allow it, add "10\.2\.0\.1" to .*outboundAllow.*--outbound-allow/);
    expect(p.refusal("192.168.7.7", "192.168.7.7")).to.equal(undefined);
    expect(p.refusal("hooks.corp.test", "10.9.9.9")).to.equal(undefined);
    expect(p.refusal("other.corp.test", "10.9.9.9")).to.match(/other\.corp\.test resolves to 10\.9\.9\.9, which is a private/);
    expect(p.nameRefusal("web.shop.svc.cluster.local")).to.equal(undefined);
    expect(p.nameRefusal("web.shop.svc")).to.match(/web\.shop\.svc is a cluster-internal name, which the executor refuses by default; to allow it, add "web\.shop\.svc" \(or "\*\.svc"\)/);
    expect(p.nameRefusal("example.com")).to.equal(undefined);
  });

  it("rejects a malformed allow-list entry, naming it", () => {
    expect(() => new OutboundPolicy({ allowLinkLocal: false, allow: ["10.0.0.0/33"] })).to.throw(AllowListError, /"10\.0\.0\.0\/33" is not a CIDR/);
    expect(() => new OutboundPolicy({ allowLinkLocal: false, allow: ["http://x"] })).to.throw(AllowListError, /"http:\/\/x"/);
  });
});

describe("outbound configuration (flags and env)", () => {
  const token = "0123456789abcdef0123";
  it("is empty by default; --outbound-allow or STEP_EXECUTOR_OUTBOUND_ALLOW sets it, the flag wins", () => {
    const cfg = (argv: string[], env: NodeJS.ProcessEnv = {}) => loadConfig(argv, { STEP_EXECUTOR_TOKEN: token, ...env }) as Exclude<ReturnType<typeof loadConfig>, "help">;
    expect(cfg([]).outboundAllow).to.deep.equal([]);
    expect(cfg([], { STEP_EXECUTOR_OUTBOUND_ALLOW: "10.0.0.0/8, hooks.svc ,*.corp.test" }).outboundAllow).to.deep.equal(["10.0.0.0/8", "hooks.svc", "*.corp.test"]);
    expect(cfg(["--outbound-allow", "127.0.0.1"], { STEP_EXECUTOR_OUTBOUND_ALLOW: "10.0.0.0/8" }).outboundAllow).to.deep.equal(["127.0.0.1"]);
    expect(cfg([])).to.include({ outboundHostConcurrency: 16, outboundHostQueue: 256 });
  });

  it("refuses a malformed entry at start-up, naming the flag", () => {
    expect(() => loadConfig(["--outbound-allow", "10.0.0.0/99"], { STEP_EXECUTOR_TOKEN: token })).to.throw(ConfigError, /^--outbound-allow: outbound allow-list entry "10\.0\.0\.0\/99" is not a CIDR/);
    expect(() => loadConfig(["--outbound-host-concurrency", "0"], { STEP_EXECUTOR_TOKEN: token })).to.throw(ConfigError, /--outbound-host-concurrency: "0" must be an integer >= 1/);
  });
});

describe("outbound policy enforced by the HTTP client (connect time, redirects)", function () {
  let target: Target;
  let other: Target;
  let dns: LocalDns;
  const clients: HttpClient[] = [];
  const client = (o: Partial<HttpClientOptions>) => { const c = createHttpClient(o); clients.push(c); return c; };
  const get = (c: HttpClient, url: string) => c.send({ method: "GET", url: new URL(url), headers: {}, timeoutMs: 5_000 });

  before(async () => {
    target = await startTarget((_req, res) => reply(res, 200, { ok: true }));
    other = await startTarget((_req, res) => reply(res, 200, { reached: "other" }));
    dns = await startDns({ "rebind.test": ["127.0.0.1"], "api.allowed.test": ["127.0.0.1"], "hooks.corp.test": ["127.0.0.1"] });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await target.close();
    await other.close();
    await dns.close();
  });
  beforeEach(() => { target.requests.length = 0; other.requests.length = 0; });
  const port = (t: Target) => new URL(t.url).port;

  it("refuses the cloud metadata IP before connecting (IPv4, IPv4-mapped IPv6, AWS IPv6)", async () => {
    const c = client({ lookup: noLookup });
    for (const url of ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/", "http://[::a9fe:a9fe]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:a9fe:a9fe::]/"]) {
      const err = await refusal(get(c, url));
      expect(err, url).to.be.instanceOf(ForbiddenAddressError);
      expect(err.message, url).to.match(/is a link-local address \(cloud metadata service\), which the executor always refuses/);
    }
  });

  it("refuses loopback by default, saying how to allow it; nothing reaches the server", async () => {
    const err = await refusal(get(client({}), target.url + "/hook"));
    expect(err).to.be.instanceOf(ForbiddenAddressError);
    expect(err.message).to.equal(`127.0.0.1 is a loopback address, which the executor refuses by default; to allow it, add "127.0.0.1" to the executor's outbound allow-list (addon parameter outboundAllow, executor flag --outbound-allow or env STEP_EXECUTOR_OUTBOUND_ALLOW)`);
    expect(target.requests).to.have.length(0);
  });

  it("refuses loopback spelled as IPv6 carrying 127.0.0.1 before connecting", async () => {
    const c = client({ lookup: noLookup });
    for (const url of ["http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/"]) {
      const err = await refusal(get(c, url));
      expect(err, url).to.be.instanceOf(ForbiddenAddressError);
      expect(err.message, url).to.match(/is a loopback address, which the executor refuses by default/);
    }
  });

  it("allows loopback when listed (address or CIDR)", async () => {
    for (const allow of [["127.0.0.1"], ["127.0.0.0/8"]]) {
      const res = await get(client({ allow }), target.url + "/hook");
      expect(res.status, allow[0]).to.equal(200);
    }
    expect(target.requests).to.have.length(2);
  });

  it("refuses a DNS name that resolves to 127.0.0.1 (the address dialled is checked, after DNS)", async () => {
    const err = await refusal(get(client({ lookup: dns.lookup }), `http://rebind.test:${port(target)}/`));
    expect(err).to.be.instanceOf(ForbiddenAddressError);
    expect(err.message).to.match(/^rebind\.test resolves to 127\.0\.0\.1, which is a loopback address, which the executor refuses by default; to allow it, add "127\.0\.0\.1" or "rebind\.test" to .*outboundAllow/);
    expect(dns.queries).to.include("rebind.test");
    expect(target.requests).to.have.length(0);
  });

  it("refuses localhost through the system resolver too", async () => {
    const err = await refusal(get(client({}), `http://localhost:${port(target)}/`));
    expect(err).to.be.instanceOf(ForbiddenAddressError);
    expect(err.message).to.match(/^localhost resolves to (127\.0\.0\.1|::1), which is a loopback address/);
    expect(target.requests).to.have.length(0);
  });

  it("allows a listed name or *.suffix although it resolves to loopback", async () => {
    const c = client({ lookup: dns.lookup, allow: ["hooks.corp.test", "*.allowed.test"] });
    expect((await get(c, `http://hooks.corp.test:${port(target)}/`)).status).to.equal(200);
    expect((await get(c, `http://api.allowed.test:${port(target)}/`)).status).to.equal(200);
    expect(target.requests).to.have.length(2);
  });

  it("refuses cluster-internal names (.svc, .cluster.local) before any DNS query", async () => {
    const c = client({ lookup: noLookup });
    for (const host of ["kubernetes.default.svc", "web.shop.svc.cluster.local"]) {
      const err = await refusal(get(c, `http://${host}/`));
      expect(err.message, host).to.match(/is a cluster-internal name, which the executor refuses by default; to allow it, add/);
    }
  });

  describe("redirects (fetch follows them; every hop connects through the same check)", () => {
    let redirector: Target;
    let location = "";
    before(async () => { redirector = await startTarget((_req, res) => reply(res, 302, "", { location })); });
    after(() => redirector.close());

    it("refuses a redirect from an allowed host to a forbidden address; the second server is not reached", async () => {
      // The redirector is allowed by name only; the hop goes to 127.0.0.1 by address, which is not.
      const c = client({ lookup: dns.lookup, allow: ["hooks.corp.test"] });
      location = `${other.url}/internal`;
      const err = await refusal(c.fetch(`http://hooks.corp.test:${port(redirector)}/start`));
      expect(cause(err)).to.be.instanceOf(ForbiddenAddressError);
      expect(cause(err).message).to.match(/^127\.0\.0\.1 is a loopback address, which the executor refuses by default/);
      expect(redirector.requests).to.have.length(1);
      expect(other.requests).to.have.length(0);
    });

    it("refuses a redirect to the metadata IP and to a name resolving to loopback", async () => {
      const c = client({ lookup: dns.lookup, allow: ["hooks.corp.test"] });
      location = "http://169.254.169.254/latest/meta-data/iam/";
      expect(cause(await refusal(c.fetch(`http://hooks.corp.test:${port(redirector)}/a`))).message).to.match(/^169\.254\.169\.254 is a link-local address/);
      location = `http://rebind.test:${port(other)}/`;
      expect(cause(await refusal(c.fetch(`http://hooks.corp.test:${port(redirector)}/b`))).message).to.match(/^rebind\.test resolves to 127\.0\.0\.1, which is a loopback address/);
      expect(other.requests).to.have.length(0);
    });

    it("follows a redirect whose target is allowed", async () => {
      const c = client({ lookup: dns.lookup, allow: ["hooks.corp.test", "127.0.0.1"] });
      location = `${other.url}/fine`;
      const res = await c.fetch(`http://hooks.corp.test:${port(redirector)}/c`);
      expect(await res.json()).to.deep.equal({ reached: "other" });
      expect(other.requests.map((r) => r.path)).to.deep.equal(["/fine"]);
    });

    it("send does not follow redirects at all: the 302 is the answer", async () => {
      const c = client({ allow: ["127.0.0.1"] });
      location = `${other.url}/never`;
      const res = await get(c, `${redirector.url}/d`);
      expect(res.status).to.equal(302);
      expect(other.requests).to.have.length(0);
    });
  });
});
