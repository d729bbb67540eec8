// The demo's stand-in for the outside world, on 127.0.0.1: a "CDN" whose purge endpoint
// wants a bearer token, and a "chat" webhook that receives the deploy notification.
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 18090);
const token = process.env.DEMO_CDN_TOKEN ?? "";
let purges = 0;

createServer(async (req, res) => {
  let body = "";
  for await (const c of req) body += c;
  const send = (status: number, data: unknown) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(data)); };
  if (req.method === "POST" && req.url === "/cdn/purge") {
    if (req.headers.authorization !== `Bearer ${token}`) return send(401, { error: "bad token" });
    purges++;
    // Fail the first attempt to show a retry in `vela status`.
    if (purges === 1) return send(503, { error: "edge busy, try again" });
    console.log(`[demo-target] purge ${JSON.stringify(JSON.parse(body).paths)}`);
    return send(200, { purgeId: `purge-${purges}`, estimatedSeconds: 5 });
  }
  if (req.method === "POST" && req.url === "/chat/notify") {
    console.log(`[demo-target] notification: ${body}`);
    return send(200, { ok: true });
  }
  send(404, { error: "not found" });
}).listen(port, "127.0.0.1", () => console.log(`[demo-target] listening on http://127.0.0.1:${port}`));
