// The kube client reuses its TLS connections to the apiserver (server/kube/kube.ts): client-node alone
// opens a new one per request. Counted by wrapping tls.connect (which https agents call for every
// new connection) against the real kube-apiserver of the local control plane.
import tls from "node:tls";
import { expect } from "chai";
import { KubeConfig, CoreV1Api } from "@kubernetes/client-node";
import { KubeClient } from "../../server/kube/api-client.js";
import { createKubeReader } from "../../server/kube/kube.js";
import { kubeconfigPath } from "../fixtures/kube.js";

describe("kube client connections (real kube-apiserver)", function () {
  const apiserverPort = () => Number(new URL(KubeClient.load(kubeconfigPath()).server).port);

  async function countConnections(work: () => Promise<void>): Promise<number> {
    const port = apiserverPort();
    let opened = 0;
    const connect = tls.connect;
    tls.connect = ((...args: Parameters<typeof tls.connect>) => {
      const options = args[0] as tls.ConnectionOptions;
      if (Number(options.port) === port) opened++;
      return connect(...args);
    }) as typeof tls.connect;
    try {
      await work();
    } finally {
      tls.connect = connect;
    }
    return opened;
  }

  it("sends 30 sequential reads over one or two connections, where the bare library opens one per read", async () => {
    const reader = createKubeReader(KubeClient.load(kubeconfigPath()));
    const ours = await countConnections(async () => {
      for (let i = 0; i < 30; i++) expect(await reader.readObject({ apiVersion: "v1", kind: "Namespace", name: "default", namespace: "" })).to.have.nested.property("metadata.name", "default");
    });
    const bare = new KubeConfig();
    bare.loadFromFile(kubeconfigPath());
    const core = bare.makeApiClient(CoreV1Api);
    const library = await countConnections(async () => {
      for (let i = 0; i < 30; i++) expect((await core.readNamespace({ name: "default" })).metadata?.name).to.equal("default");
    });
    expect(ours, "connections opened by the executor's kube client").to.be.within(1, 2);
    // The comparison shows what the test measures: without the reuse every read is a new connection.
    expect(library, "connections opened by client-node's own agents").to.be.at.least(25);
  });
});
