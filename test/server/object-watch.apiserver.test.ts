import { expect } from "chai";
import { KubeClient } from "../../server/kube/api-client.js";
import { createKubeReader } from "../../server/kube/kube.js";
import { ObjectWatches } from "../../server/kube/object-watch.js";
import { newRun, startExecutor } from "../fixtures/executor.js";
import { applyObject, kubeClients, kubeconfigPath, tempNamespace } from "../fixtures/kube.js";

const HOUR = 3_600_000;

/** The watch counts once the runs opened their feeds (they start after the first poll answered). */
async function countsSettle(watches: ObjectWatches, want: { watch: number; poll: number }) {
  const end = Date.now() + 3_000;
  while (Date.now() < end && JSON.stringify(watches.counts()) !== JSON.stringify(want)) await new Promise((r) => setTimeout(r, 20));
  expect(watches.counts()).to.deep.equal(want);
}

describe("object watches: waiting steps follow objects by watch (real kube-apiserver)", () => {
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  before(async () => { ns = await tempNamespace("watch"); });
  after(async () => { await ns.delete(); });

  const cm = (name: string, data: Record<string, string>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns.name }, data });
  const gate = (name: string) => ({ apiVersion: "v1", kind: "ConfigMap", name, condition: "object.data.open == 'yes'", outputs: { v: "object.data.v" } });

  it("20 steps waiting on one object share one watch, and a change ends them all though polling would take an hour", async () => {
    // Polling fallback every hour: only the watch can explain a reaction within seconds.
    const watches = new ObjectWatches({ pollIntervalMs: HOUR });
    const executor = await startExecutor({ watches });
    try {
      await applyObject(cm("gate", { open: "no", v: "1" }));
      const runs = Array.from({ length: 20 }, (_, i) => newRun(ns.name, `s${i}`));
      for (const run of runs) expect((await executor.poll("read-object-and-wait", gate("gate"), run)).body.phase).to.equal("running");
      await countsSettle(watches, { watch: 1, poll: 0 });
      await applyObject(cm("gate", { open: "yes", v: "2" }));
      const answers = await Promise.all(runs.map((run) => executor.pollUntilDone("read-object-and-wait", gate("gate"), run, 5_000)));
      for (const { answer } of answers) expect(answer.body).to.deep.include({ phase: "succeeded", outputs: { v: "2" } });
      // The finished waits closed their feeds: nothing is watched any more.
      await countsSettle(watches, { watch: 0, poll: 0 });
    } finally {
      await executor.close();
    }
  });

  it("a feed sees the object deleted and created again", async () => {
    const reader = createKubeReader(KubeClient.load(kubeconfigPath()), new ObjectWatches({ pollIntervalMs: HOUR }));
    await applyObject(cm("phoenix", { n: "1" }));
    const feed = reader.watchObject({ apiVersion: "v1", kind: "ConfigMap", name: "phoenix", namespace: ns.name });
    const signal = new AbortController().signal;
    try {
      const first = await feed.read();
      expect(first.object?.data).to.deep.equal({ n: "1" });
      // A list item carries apiVersion and kind, as a GET would.
      expect(first.object).to.include({ apiVersion: "v1", kind: "ConfigMap" });
      await kubeClients().core.deleteNamespacedConfigMap({ name: "phoenix", namespace: ns.name });
      await feed.changed(first.version, 5_000, signal);
      const gone = await feed.read();
      expect(gone.version).to.be.greaterThan(first.version);
      expect(gone.object).to.equal(undefined);
      await applyObject(cm("phoenix", { n: "2" }));
      await feed.changed(gone.version, 5_000, signal);
      const back = await feed.read();
      expect(back.object?.data).to.deep.equal({ n: "2" });
      expect(back.object?.metadata?.uid).to.not.equal(first.object?.metadata?.uid);
    } finally {
      feed.close();
    }
  });

  it("past --max-object-watches a wait polls instead, and still ends", async () => {
    const watches = new ObjectWatches({ maxWatches: 1, pollIntervalMs: 100 });
    const executor = await startExecutor({ watches });
    try {
      await applyObject(cm("first", { open: "no" }));
      await applyObject(cm("second", { open: "no" }));
      const a = newRun(ns.name, "a");
      const b = newRun(ns.name, "b");
      expect((await executor.poll("read-object-and-wait", gate("first"), a)).body.phase).to.equal("running");
      expect((await executor.poll("read-object-and-wait", gate("second"), b)).body.phase).to.equal("running");
      await countsSettle(watches, { watch: 1, poll: 1 });
      await applyObject(cm("first", { open: "yes", v: "a" }));
      await applyObject(cm("second", { open: "yes", v: "b" }));
      expect((await executor.pollUntilDone("read-object-and-wait", gate("first"), a, 5_000)).answer.body.outputs).to.deep.equal({ v: "a" });
      expect((await executor.pollUntilDone("read-object-and-wait", gate("second"), b, 5_000)).answer.body.outputs).to.deep.equal({ v: "b" });
    } finally {
      await executor.close();
    }
  });

  it("renews its watch (here every ~1 s) without missing a change made between renewals", async () => {
    const watches = new ObjectWatches({ pollIntervalMs: HOUR, watchTimeoutS: 1 });
    const executor = await startExecutor({ watches });
    try {
      await applyObject(cm("renewed", { open: "no" }));
      const run = newRun(ns.name);
      expect((await executor.poll("read-object-and-wait", gate("renewed"), run)).body.phase).to.equal("running");
      // Several renewals pass; changes that do not meet the condition keep it waiting.
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 900));
        await applyObject(cm("renewed", { open: "no", v: String(i) }));
      }
      expect((await executor.poll("read-object-and-wait", gate("renewed"), run)).body.phase).to.equal("running");
      await applyObject(cm("renewed", { open: "yes", v: "last" }));
      expect((await executor.pollUntilDone("read-object-and-wait", gate("renewed"), run, 5_000)).answer.body.outputs).to.deep.equal({ v: "last" });
    } finally {
      await executor.close();
    }
  });
});
