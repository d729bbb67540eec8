// An HTTP target on 127.0.0.1 for the benches: answers JSON at once (/fast) or holds the request
// until released or its hold time passes (/slow?holdMs=N), counting what it served.
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface BenchTarget {
  url: string;
  count: (path: string) => number;
  held: () => number;
  /** Answers every held request now. */
  releaseAll(): void;
  close(): Promise<void>;
}

export async function startTarget(): Promise<BenchTarget> {
  const counts = new Map<string, number>();
  const held = new Set<{ res: ServerResponse; timer: NodeJS.Timeout }>();
  const answer = (res: ServerResponse) => {
    if (res.writableEnded) return;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, id: "done" }));
  };
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    counts.set(u.pathname, (counts.get(u.pathname) ?? 0) + 1);
    req.resume();
    req.on("end", () => {
      if (u.pathname === "/slow") {
        const holdMs = Math.min(Number(u.searchParams.get("holdMs") ?? 60_000), 600_000);
        const h = { res, timer: setTimeout(() => { held.delete(h); answer(res); }, holdMs) };
        held.add(h);
        res.on("close", () => { clearTimeout(h.timer); held.delete(h); });
        return;
      }
      answer(res);
    });
  });
  server.maxConnections = 50_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", 4096, r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    count: (path) => counts.get(path) ?? 0,
    held: () => held.size,
    releaseAll() {
      for (const h of held) { clearTimeout(h.timer); answer(h.res); }
      held.clear();
    },
    close: () => new Promise((r) => {
      for (const h of held) clearTimeout(h.timer);
      held.clear();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}
