// One lookup of KubeVela Applications for the run store, Events and the reads of runs
// (server/kubevela/applications.ts), against the real kube-apiserver with KubeVela's Application CRD.
import { expect } from "chai";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { KubeClient } from "../../server/kube/api-client.js";
import { ApplicationLookup, ApplicationReadError } from "../../server/kubevela/applications.js";
import { applyObject, kubeClients, kubeconfigPath, tempNamespace } from "../fixtures/kube.js";

/** A client that counts the API requests made through it (each one is authenticated once). */
function countingConfig(access = KubeClient.load(kubeconfigPath()).access) {
  const counter = { requests: 0 };
  const kc = new KubeClient({ ...access, authorization: async () => { counter.requests++; return access.authorization(); } });
  return { kc, counter };
}

describe("Application lookup (real kube-apiserver)", () => {
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  before(async () => { ns = await tempNamespace("applookup"); });
  after(async () => { await ns.delete(); });

  const app = (name: string) => ({
    apiVersion: "core.oam.dev/v1beta1", kind: "Application",
    metadata: { name, namespace: ns.name, annotations: { "app.oam.dev/service-account-name": "deployer" } },
    spec: { components: [] },
  });

  it("50 concurrent lookups of one Application cost one GET, and give its uid and annotations", async () => {
    const created = (await applyObject(app("shared") as never)) as { metadata: { uid: string } };
    const { kc, counter } = countingConfig();
    const lookup = new ApplicationLookup(kc);
    const answers = await Promise.all(Array.from({ length: 50 }, () => lookup.get(ns.name, "shared")));
    expect(counter.requests).to.equal(1);
    for (const a of answers) {
      expect(a?.uid).to.equal(created.metadata.uid);
      expect(a?.annotations).to.include({ "app.oam.dev/service-account-name": "deployer" });
    }
  });

  it("remembers an answer for its TTL, found or not, then reads again (a re-created Application gets its new uid)", async () => {
    let now = 1_000_000;
    const { kc, counter } = countingConfig();
    const lookup = new ApplicationLookup(kc, { ttlMs: 10_000 }, () => now);
    expect(await lookup.get(ns.name, "later")).to.equal(null);
    const created = (await applyObject(app("later") as never)) as { metadata: { uid: string } };
    now += 5_000;
    expect(await lookup.get(ns.name, "later")).to.equal(null); // within the TTL: the remembered answer
    expect(counter.requests).to.equal(1);
    now += 5_000;
    expect(await lookup.get(ns.name, "later")).to.have.property("uid", created.metadata.uid);
    expect(counter.requests).to.equal(2);
    const apps = kubeClients().kc.makeApiClient(CustomObjectsApi);
    const where = { group: "core.oam.dev", version: "v1beta1", namespace: ns.name, plural: "applications", name: "later" };
    await apps.deleteNamespacedCustomObject(where);
    // KubeVela's finalizer: the Application is gone only once its controller let it go.
    for (let i = 0; i < 100 && (await apps.getNamespacedCustomObject(where).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
    const again = (await applyObject(app("later") as never)) as { metadata: { uid: string } };
    now += 10_000;
    expect(await lookup.get(ns.name, "later")).to.have.property("uid", again.metadata.uid);
    expect(again.metadata.uid).to.not.equal(created.metadata.uid);
  });

  it("an API server it cannot reach: an ApplicationReadError, not remembered (the next lookup tries again)", async () => {
    const { kc, counter } = countingConfig({ server: "https://127.0.0.1:1", insecure: true, authorization: async () => "Bearer t" });
    const lookup = new ApplicationLookup(kc, { requestTimeoutMs: 2_000 });
    for (let i = 1; i <= 2; i++) {
      const err = await lookup.get(ns.name, "x").then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(ApplicationReadError);
      expect((err as Error).message).to.match(new RegExp(`^error reading Application ${ns.name}/x: `));
      expect(counter.requests).to.equal(i);
    }
  });
});
