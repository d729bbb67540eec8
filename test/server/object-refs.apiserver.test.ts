// Object references that try to leave the object they name (a slash or %2F in a name, "../" in
// an apiVersion, a Secret by another spelling) are refused before any request, on the real
// kube-apiserver: the planted Secret values appear in no answer.
import { expect } from "chai";
import { KubeClient } from "../../server/kube/api-client.js";
import { createKubeReader, RefusedReadError } from "../../server/kube/kube.js";
import { apiVersionProblem, kindProblem, nameProblem, namespaceProblem } from "../../server/kube/object-ref.js";
import { kubeClients, kubeconfigPath, tempNamespace } from "../fixtures/kube.js";
import { newRun, startExecutor, type Executor } from "../fixtures/executor.js";

describe("object references (hostile names, apiVersions and kinds)", function () {
  this.timeout(60_000);

  describe("path segments", () => {
    it("names with /, %, backslash, . or .. are refused; ordinary names pass", () => {
      for (const bad of ["tenant-b/secrets/marker", "tenant-b%2Fsecrets", "..", ".", "a\\b", "x?watch=1", "x#y", "a b", ""]) {
        expect(nameProblem(bad), bad).to.be.a("string");
      }
      for (const good of ["web", "web.v2", "system:aggregate-to-view", "a".repeat(253)]) expect(nameProblem(good), good).to.equal(undefined);
    });
    it("apiVersions must be [group/]version; kinds identifiers; namespaces labels", () => {
      for (const bad of ["../api/v1", "v1/../..", "apps/v1/x", "/v1", "apps/", "V1", "apps%2Fv1"]) expect(apiVersionProblem(bad), bad).to.be.a("string");
      for (const good of ["v1", "apps/v1", "core.oam.dev/v1beta1", "example.com/v2alpha1"]) expect(apiVersionProblem(good), good).to.equal(undefined);
      for (const bad of ["Secret/x", "../Pod", "Pod ", "1Pod"]) expect(kindProblem(bad), bad).to.be.a("string");
      for (const bad of ["tenant-b/secrets", "Tenant", "a.b", "-a"]) expect(namespaceProblem(bad), bad).to.be.a("string");
    });
  });

  describe("on the real kube-apiserver", () => {
    let executor: Executor;
    let mine: Awaited<ReturnType<typeof tempNamespace>>;
    let other: Awaited<ReturnType<typeof tempNamespace>>;
    const marker = `marker-${Math.random().toString(36).slice(2)}-value`;
    const own = `own-${Math.random().toString(36).slice(2)}-value`;

    before(async () => {
      executor = await startExecutor();
      mine = await tempNamespace("refs-a");
      other = await tempNamespace("refs-b");
      const { core } = kubeClients();
      await core.createNamespacedSecret({ namespace: other.name, body: { metadata: { name: "marker" }, stringData: { value: marker } } });
      await core.createNamespacedSecret({ namespace: mine.name, body: { metadata: { name: "own" }, stringData: { value: own } } });
    });
    after(async () => { await executor.close(); await mine.delete(); await other.delete(); });

    const attempts = () => [
      { what: "a slash in a cluster-scoped name", p: { apiVersion: "v1", kind: "Namespace", name: `${other.name}/secrets/marker`, outputs: { leak: "object.data.value" }, timeout: "2s" }, field: "name" },
      { what: "an encoded slash", p: { apiVersion: "v1", kind: "Namespace", name: `${other.name}%2Fsecrets%2Fmarker`, timeout: "2s" }, field: "name" },
      { what: "every Secret of a namespace", p: { apiVersion: "v1", kind: "Namespace", name: `${other.name}/secrets`, timeout: "2s" }, field: "name" },
      { what: "the executor's key", p: { apiVersion: "v1", kind: "Namespace", name: "vela-system/secrets/step-executor-token", timeout: "2s" }, field: "name" },
      { what: "the service proxy", p: { apiVersion: "v1", kind: "Namespace", name: `${other.name}/services/x:80/proxy/`, timeout: "2s" }, field: "name" },
      { what: "a path-normalised apiVersion", p: { apiVersion: "../api/v1", kind: "Secret", name: "own", outputs: { leak: "object.data.value" }, timeout: "2s" }, field: "apiVersion" },
      { what: "a slash in the kind", p: { apiVersion: "v1", kind: "Secret/own", name: "x", timeout: "2s" }, field: "kind" },
    ];

    it("read-object-and-wait refuses each at once with a one-line message naming the field; no Secret value anywhere", async () => {
      for (const { what, p, field } of attempts()) {
        const { answer } = await executor.pollUntilDone("read-object-and-wait", p, newRun(mine.name));
        expect(answer.body.phase, what).to.equal("failed");
        expect(answer.body.message, what).to.match(new RegExp(`^${field}: `));
        expect(answer.body.message, what).not.to.contain("\n");
        const text = JSON.stringify(answer.body);
        expect(text, what).not.to.contain(Buffer.from(marker).toString("base64"));
        expect(text, what).not.to.contain(Buffer.from(own).toString("base64"));
        expect(text, what).not.to.contain(marker);
      }
    });

    it("the kube reader itself refuses such references and Secrets however spelled, without a request", async () => {
      const kube = createKubeReader(KubeClient.load(kubeconfigPath()));
      const refused = async (ref: { apiVersion: string; kind: string; name: string; namespace: string }) => {
        try {
          await kube.readObject(ref);
        } catch (err) {
          expect(err, JSON.stringify(ref)).to.be.instanceOf(RefusedReadError);
          return (err as Error).message;
        }
        throw new Error(`read of ${JSON.stringify(ref)} was not refused`);
      };
      expect(await refused({ apiVersion: "v1", kind: "Secret", name: "own", namespace: mine.name })).to.contain("steps do not read Secrets");
      await refused({ apiVersion: "v1", kind: "Namespace", name: `${other.name}/secrets/marker`, namespace: mine.name });
      await refused({ apiVersion: "../api/v1", kind: "Secret", name: "own", namespace: mine.name });
      await refused({ apiVersion: "v1", kind: "ConfigMap", name: "x", namespace: `${other.name}/secrets` });
      try {
        await kube.readSecret(mine.name, `../../${other.name}/secrets/marker`);
        throw new Error("readSecret with a path in the name was not refused");
      } catch (err) {
        expect(err).to.be.instanceOf(RefusedReadError);
      }
      // A watch of a Secret is refused the same way (the feed reports it; the wait fails).
      const feed = kube.watchObject({ apiVersion: "v1", kind: "Secret", name: "own", namespace: mine.name });
      try {
        const look = await feed.read();
        expect(look.object).to.equal(undefined);
        expect(look.error).to.be.instanceOf(RefusedReadError);
      } finally {
        feed.close();
      }
    });

    it("ordinary reads still work: the namespace object itself, cluster-scoped", async () => {
      const { answer } = await executor.pollUntilDone("read-object-and-wait",
        { apiVersion: "v1", kind: "Namespace", name: mine.name, condition: "object.status.phase == 'Active'", outputs: { name: "object.metadata.name" }, timeout: "10s" },
        newRun(mine.name));
      expect(answer.body.phase, answer.body.message).to.equal("succeeded");
      expect(answer.body.outputs).to.deep.equal({ name: mine.name });
    });
  });
});
