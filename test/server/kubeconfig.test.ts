// The executor's kubeconfig loading (server/kube/kubeconfig.ts): what kubectl users' files hold,
// and a clear error for what the executor does not support.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { stringify } from "yaml";
import { loadKubeAccess } from "../../server/kube/kubeconfig.js";

describe("kubeconfig loading", () => {
  const dir = mkdtempSync(join(tmpdir(), "kubeconfig-"));
  const write = (name: string, doc: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof doc === "string" ? doc : stringify(doc));
    return path;
  };
  const config = (user: Record<string, unknown>, cluster: Record<string, unknown> = { server: "https://127.0.0.1:6443/" }) => ({
    apiVersion: "v1", kind: "Config", "current-context": "c",
    clusters: [{ name: "k", cluster }], users: [{ name: "u", user }], contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
  });

  it("reads the server, CA and client certificate from data fields and files (relative to the kubeconfig)", async () => {
    write("ca.pem", "CA-PEM");
    const path = write("certs.yaml", config(
      { "client-certificate-data": Buffer.from("CERT").toString("base64"), "client-key": "key.pem" },
      { server: "https://127.0.0.1:6443/", "certificate-authority": "ca.pem", "tls-server-name": "kubernetes" },
    ));
    write("key.pem", "KEY");
    const a = loadKubeAccess(path);
    expect(a).to.include({ server: "https://127.0.0.1:6443", ca: "CA-PEM", cert: "CERT", key: "KEY", insecure: false, serverName: "kubernetes" });
    expect(await a.authorization()).to.equal(undefined);
  });

  it("sends a token, a token file's token, or basic credentials", async () => {
    expect(await loadKubeAccess(write("token.yaml", config({ token: "abc" }))).authorization()).to.equal("Bearer abc");
    write("token.txt", "from-file\n");
    expect(await loadKubeAccess(write("tokenfile.yaml", config({ tokenFile: "token.txt" }))).authorization()).to.equal("Bearer from-file");
    expect(await loadKubeAccess(write("basic.yaml", config({ username: "a", password: "b" }))).authorization()).to.equal(`Basic ${Buffer.from("a:b").toString("base64")}`);
  });

  it("runs an exec credential plugin once and keeps its token until it expires", async () => {
    const count = join(dir, "exec-count");
    writeFileSync(count, "");
    const plugin = write("plugin.sh", `#!/bin/sh\necho x >> ${count}\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token","expirationTimestamp":"2999-01-01T00:00:00Z"}}'\n`);
    chmodSync(plugin, 0o755);
    const a = loadKubeAccess(write("exec.yaml", config({ exec: { apiVersion: "client.authentication.k8s.io/v1", command: plugin } })));
    expect(await Promise.all([a.authorization(), a.authorization()])).to.deep.equal(["Bearer exec-token", "Bearer exec-token"]);
    expect(await a.authorization()).to.equal("Bearer exec-token");
    expect(readFileSync(count, "utf8").trim().split("\n")).to.have.length(1);
  });

  it("says what is wrong in one line: no current context, an unknown context, auth-provider, proxy-url", () => {
    expect(() => loadKubeAccess(write("nocontext.yaml", { ...config({}), "current-context": "" }))).to.throw(/has no current-context$/);
    expect(() => loadKubeAccess(write("wrongcontext.yaml", { ...config({}), "current-context": "other" }))).to.throw(/current-context other is not among its contexts$/);
    expect(() => loadKubeAccess(write("provider.yaml", config({ "auth-provider": { name: "gcp" } })))).to.throw(/user u uses an auth-provider, which the executor does not support; use a token, a client certificate or an exec credential plugin$/);
    expect(() => loadKubeAccess(write("proxy.yaml", config({}, { server: "https://x", "proxy-url": "http://proxy" })))).to.throw(/uses proxy-url, which the executor does not support$/);
    expect(() => loadKubeAccess(write("broken.yaml", "clusters: [\n"))).to.throw(/^cannot read kubeconfig .*broken\.yaml: /);
  });

  it("merges $KUBECONFIG's files as kubectl does: the first to name something wins", () => {
    const first = write("first.yaml", { "current-context": "c", contexts: [{ name: "c", context: { cluster: "k", user: "u" } }] });
    const second = write("second.yaml", config({ token: "t" }, { server: "https://second:6443" }));
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = `${first}:${second}`;
    try {
      expect(loadKubeAccess().server).to.equal("https://second:6443");
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });
});
