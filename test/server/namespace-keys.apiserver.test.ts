// Each namespace's key to the executor (server/http/namespace-keys.ts), on the real kube-apiserver:
// written where an Application appears, rewritten when the addon's URL or the token changes.
import { expect } from "chai";
import { pino } from "pino";
import { namespaceKey } from "../../server/http/auth.js";
import { ApplicationWatch } from "../../server/kubevela/application-watch.js";
import { KEY_SECRET, NamespaceKeys, SERVICE_ANNOTATION, URL_ANNOTATION } from "../../server/http/namespace-keys.js";
import { applyObject, executorClient, kubeClients, tempNamespace } from "../fixtures/kube.js";

describe("namespace keys (real kube-apiserver)", function () {
  this.timeout(60_000);
  let config: Awaited<ReturnType<typeof tempNamespace>>;
  let tenant: Awaited<ReturnType<typeof tempNamespace>>;
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  /** Keys with their own Application watch; stop() stops both. */
  const keysOf = (tokens: string[]) => {
    const watch = new ApplicationWatch(executorClient(), log, 60_000);
    const keys = new NamespaceKeys(executorClient(), log, { tokens, configNamespace: config.name, configName: "step-executor", resyncMs: 60_000 }, watch);
    return { start: () => keys.start(), stop: async () => { await keys.stop(); await watch.stop(); } };
  };

  before(async () => {
    config = await tempNamespace("keys-config");
    tenant = await tempNamespace("keys-tenant");
    await applyObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "step-executor", namespace: config.name }, data: { url: "http://127.0.0.1:1111" } } as never);
  });
  after(async () => { await config.delete(); await tenant.delete(); });

  /** The Secret once `ok` holds for it (the executor writes asynchronously). */
  async function secretWhen(ok: (s: { key: string; url: string | undefined; service?: string }) => boolean) {
    const end = Date.now() + 20_000;
    for (;;) {
      const s = await kubeClients().core.readNamespacedSecret({ namespace: tenant.name, name: KEY_SECRET }).catch(() => undefined);
      const service = s?.metadata?.annotations?.[SERVICE_ANNOTATION];
      const seen = s && { key: Buffer.from(s.data?.key ?? "", "base64").toString(), url: s.metadata?.annotations?.[URL_ANNOTATION], ...(service ? { service } : {}) };
      if (seen && ok(seen)) return seen;
      if (Date.now() > end) throw new Error(`the Secret did not reach the expected state; last: ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("a namespace that refuses the Secret (a quota of 0 Secrets) does not hold up the others", async () => {
    const full = await tempNamespace("keys-full");
    const other = await tempNamespace("keys-other");
    try {
      await applyObject({ apiVersion: "v1", kind: "ResourceQuota", metadata: { name: "no-secrets", namespace: full.name }, spec: { hard: { secrets: "0" } } } as never);
      // The quota admission sees the quota only once its status is computed.
      for (let i = 0; i < 100 && !(await kubeClients().core.readNamespacedResourceQuota({ namespace: full.name, name: "no-secrets" })).status?.hard; i++) await new Promise((r) => setTimeout(r, 100));
      for (const ns of [full.name, other.name]) {
        await applyObject({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name: "app", namespace: ns }, spec: { components: [] } } as never);
      }
      const keys = keysOf(["first-token-0123456789"]);
      keys.start();
      try {
        const end = Date.now() + 20_000;
        let written;
        while (!(written = await kubeClients().core.readNamespacedSecret({ namespace: other.name, name: KEY_SECRET }).catch(() => undefined))) {
          if (Date.now() > end) throw new Error("the other namespace never got its Secret");
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(Buffer.from(written.data!.key!, "base64").toString()).to.equal(namespaceKey("first-token-0123456789", other.name));
        expect(await kubeClients().core.readNamespacedSecret({ namespace: full.name, name: KEY_SECRET }).catch(() => undefined)).to.equal(undefined);
      } finally {
        await keys.stop();
      }
    } finally {
      await full.delete();
      await other.delete();
    }
  });

  it("writes the Secret into a namespace when its first Application appears, follows URL changes and token rotation", async () => {
    const keys = keysOf(["first-token-0123456789"]);
    keys.start();
    try {
      await applyObject({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name: "app", namespace: tenant.name }, spec: { components: [] } } as never);
      const first = await secretWhen(() => true);
      expect(first).to.deep.equal({ key: namespaceKey("first-token-0123456789", tenant.name), url: "http://127.0.0.1:1111" });
      // The addon enabled again with another executorURL: every Secret follows.
      await applyObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "step-executor", namespace: config.name }, data: { url: "http://127.0.0.1:2222" } } as never);
      await secretWhen((s) => s.url === "http://127.0.0.1:2222");
      // In the cluster the addon names the executor's Service too (the definitions' readiness gate);
      // back to an executorURL, the annotation goes.
      await applyObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "step-executor", namespace: config.name }, data: { url: "http://step-executor.vela-system.svc:8080", service: "vela-system/step-executor" } } as never);
      await secretWhen((s) => s.url === "http://step-executor.vela-system.svc:8080" && s.service === "vela-system/step-executor");
      await kubeClients().core.replaceNamespacedConfigMap({ namespace: config.name, name: "step-executor", body: { metadata: { name: "step-executor", namespace: config.name }, data: { url: "http://127.0.0.1:2222" } } });
      await secretWhen((s) => s.url === "http://127.0.0.1:2222" && s.service === undefined);
    } finally {
      await keys.stop();
    }
    // A new token (the old one still accepted by auth.ts): the Secret gets the new token's key.
    const rotated = keysOf(["second-token-0123456789", "first-token-0123456789"]);
    rotated.start();
    try {
      const s = await secretWhen((x) => x.key === namespaceKey("second-token-0123456789", tenant.name));
      expect(s.url).to.equal("http://127.0.0.1:2222");
    } finally {
      await rotated.stop();
    }
  });
});
