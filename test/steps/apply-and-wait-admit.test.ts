// apply-and-wait's admission of an object in a managed cluster, against readers that fail as the
// hub's proxy does (no cluster needed): what fails the step, what makes it wait unapproved.
import { expect } from "chai";
import { ForbiddenReadError, RefusedReadError, UnknownKindError, type KubeReader } from "../../server/kube/kube.js";
import type { ObjectRef } from "../../server/kube/object-ref.js";
import { InputError } from "../../server/shared/errors.js";
import { applyAndWait } from "../../steps/apply-and-wait/step.js";

const run = { namespace: "shop", application: "app", step: "apply", session: "s1" };
const value = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "release" }, data: {} };

/** A reader whose read of the object fails with `error` (or finds nothing); discovery serves ConfigMaps. */
function reader(error?: Error) {
  const reads: ObjectRef[] = [];
  const kinds: (string | undefined)[] = [];
  const kube = {
    readObject: async (ref: ObjectRef) => {
      reads.push(ref);
      if (error) throw error;
      return undefined;
    },
    describeKind: async (_apiVersion: string, kind: string, cluster?: string) => {
      kinds.push(cluster);
      return kind === "ConfigMap" ? { group: "", resource: "configmaps", namespaced: true } : undefined;
    },
  } as unknown as KubeReader;
  return { kube, reads, kinds };
}

const admit = (kube: KubeReader, p: Record<string, unknown>) =>
  applyAndWait.admit!({ value, timeout: "5m", ...p } as never, { run, kube, tuning: { pollIntervalMs: 1000, secretWaitMs: 1000 } });

describe("apply-and-wait: admission in a managed cluster", () => {
  it("reads the object there as the run's identity, and describes its kind there, before approving", async () => {
    const r = reader();
    expect(await admit(r.kube, { cluster: "prod-eu" })).to.equal(undefined);
    expect(r.reads).to.deep.equal([{ apiVersion: "v1", kind: "ConfigMap", name: "release", namespace: "shop", cluster: "prod-eu" }]);
    expect(r.kinds).to.deep.equal(["prod-eu"]);
  });

  it("on the hub (no cluster, \"\" or KubeVela's \"local\"), reads nothing (discovery only)", async () => {
    for (const p of [{}, { cluster: "" }, { cluster: "local" }]) {
      const r = reader();
      expect(await admit(r.kube, p)).to.equal(undefined);
      expect(r.reads, JSON.stringify(p)).to.deep.equal([]);
      expect(r.kinds, JSON.stringify(p)).to.deep.equal([undefined]);
      expect(applyAndWait.prepare({ value, timeout: "5m", ...p } as never, run).ref, JSON.stringify(p)).not.to.have.property("cluster");
    }
  });

  it("an unreachable cluster makes the step wait, unapproved, with the reason", async () => {
    const r = reader(new Error("error reading ConfigMap shop/release: HTTP 500 dial tcp 10.0.0.9:6443: connect: connection refused"));
    expect(await admit(r.kube, { cluster: "prod-eu" })).to.equal(
      "apply-and-wait: waiting for cluster prod-eu before applying ConfigMap shop/release: error reading ConfigMap shop/release: HTTP 500 dial tcp 10.0.0.9:6443: connect: connection refused");
  });

  it("a cluster that is not joined, or that the identity may not use, fails the step (nothing applied)", async () => {
    for (const err of [new RefusedReadError('cluster: "prod-ue" is not a cluster joined to KubeVela (vela cluster list); fix cluster'), new ForbiddenReadError("… may not use cluster prod-eu …")]) {
      let thrown: unknown;
      try {
        await admit(reader(err).kube, { cluster: "prod-eu" });
      } catch (e) {
        thrown = e;
      }
      expect(thrown).to.be.instanceOf(InputError);
      expect((thrown as Error).message).to.equal(err.message);
    }
  });

  it("a kind the managed cluster does not serve fails the step as on the hub", async () => {
    let thrown: unknown;
    try {
      await admit(reader(new UnknownKindError("the API server does not serve kind Widget in example.com/v1")).kube, { cluster: "prod-eu", value: { ...value, apiVersion: "example.com/v1", kind: "Widget" } });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).to.be.instanceOf(InputError);
    expect((thrown as Error).message).to.match(/^value\.kind: the API server of cluster prod-eu does not serve kind Widget in example\.com\/v1; check apiVersion and kind/);
  });
});
