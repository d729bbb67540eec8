// The executor's Kubernetes client (server/kube/api-client.ts) bounds its request connections to an
// API server and keeps watches apart, against a real HTTP server on 127.0.0.1 that holds requests.
import { once } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { expect } from "chai";
import { KubeClient, MAX_REQUEST_CONNECTIONS } from "../../server/kube/api-client.js";

describe("kube API client connections", () => {
  it(`sends a burst of requests over at most ${MAX_REQUEST_CONNECTIONS} connections, queueing the rest, and opens a watch while they are all busy`, async () => {
    const sockets = new Set<Socket>();
    const held: ServerResponse[] = [];
    let watches = 0;
    const server = createServer((req, res) => {
      if (req.url?.includes("watch=true")) {
        watches++;
        res.writeHead(200, { "content-type": "application/json" });
        res.write(JSON.stringify({ type: "ADDED", object: { metadata: { name: "w" } } }) + "\n");
        held.push(res);
        return;
      }
      held.push(res); // answered below, once the burst has queued
    });
    server.on("connection", (s) => sockets.add(s));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new KubeClient({ server: base, insecure: false, authorization: async () => "Bearer t" });
    const waitFor = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(ok(), what).to.equal(true);
    };
    try {
      const burst = Array.from({ length: 3 * MAX_REQUEST_CONNECTIONS }, (_, i) => client.request<{ i: number }>("GET", `/api/v1/namespaces/n/configmaps/c${i}`));
      await waitFor(`${MAX_REQUEST_CONNECTIONS} requests reach the server`, () => held.length === MAX_REQUEST_CONNECTIONS);
      expect(sockets.size, "connections while the burst is in flight").to.equal(MAX_REQUEST_CONNECTIONS);
      // A watch gets a connection of its own although every request connection is busy.
      const events: string[] = [];
      const watch = client.watch("/api/v1/namespaces/n/configmaps", {}, (type) => events.push(type), () => undefined);
      await waitFor("the watch's first event", () => events.length === 1);
      expect(watches).to.equal(1);
      watch.abort();
      // A request waiting for a connection still ends at its own deadline.
      const queued = client.request("GET", "/api/v1/namespaces/n/configmaps/late", { timeoutMs: 200 });
      let refusal: Error | undefined;
      await queued.catch((err: Error) => { refusal = err; });
      expect(refusal?.message).to.equal("the API server did not answer within 0.2 s");
      // The queued requests go out on the same connections as the first ones finish.
      let answered = 0;
      const answerAll = setInterval(() => {
        for (const res of held.splice(0)) if (!res.headersSent) { res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ i: answered++ })); }
      }, 5);
      try {
        expect(await Promise.all(burst)).to.have.length(3 * MAX_REQUEST_CONNECTIONS);
      } finally {
        clearInterval(answerAll);
      }
      expect(sockets.size, "connections after the whole burst (the watch's included)").to.equal(MAX_REQUEST_CONNECTIONS + 1);
    } finally {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});
