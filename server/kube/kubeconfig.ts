// Where the executor's API server is and how it proves who it is: a kubeconfig file (--kubeconfig,
// else $KUBECONFIG, else ~/.kube/config) or, in a pod, its ServiceAccount — the order kubectl and
// client-go use. Only what the executor needs: a server, TLS material, and a token, a token file,
// a client certificate or an exec credential plugin.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

const SERVICEACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeAccess {
  /** The API server's base URL, without a trailing slash. */
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  /** insecure-skip-tls-verify */
  insecure: boolean;
  /** tls-server-name */
  serverName?: string;
  /** The Authorization header's value when one is needed (read anew as tokens rotate). */
  authorization(): Promise<string | undefined>;
}

interface NamedCluster { name: string; cluster: Record<string, unknown> }
interface NamedUser { name: string; user: Record<string, unknown> }
interface NamedContext { name: string; context: { cluster?: string; user?: string } }
interface KubeconfigFile { "current-context"?: string; clusters?: NamedCluster[]; users?: NamedUser[]; contexts?: NamedContext[] }

/** The executor's access: `path` if given, else $KUBECONFIG's files, else ~/.kube/config, else the pod's ServiceAccount. */
export function loadKubeAccess(path?: string): KubeAccess {
  if (path) return fromKubeconfig([path]);
  const env = (process.env.KUBECONFIG ?? "").split(delimiter).filter(Boolean);
  if (env.length) return fromKubeconfig(env);
  const home = join(homedir(), ".kube", "config");
  if (existsSync(home)) return fromKubeconfig([home]);
  if (existsSync(`${SERVICEACCOUNT}/token`)) return inCluster();
  throw new Error("no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run in a pod with a ServiceAccount");
}

function inCluster(): KubeAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error("in a pod without KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT: cannot find the API server");
  return {
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    ca: readFileSync(`${SERVICEACCOUNT}/ca.crt`, "utf8"),
    insecure: false,
    authorization: tokenFile(`${SERVICEACCOUNT}/token`),
  };
}

/** Files merged as kubectl merges them: the first to set a name or the current context wins. */
function fromKubeconfig(files: string[]): KubeAccess {
  const clusters = new Map<string, { cluster: Record<string, unknown>; dir: string }>();
  const users = new Map<string, { user: Record<string, unknown>; dir: string }>();
  const contexts = new Map<string, NamedContext["context"]>();
  let current: string | undefined;
  for (const file of files) {
    let doc: KubeconfigFile;
    try {
      doc = (parse(readFileSync(file, "utf8")) ?? {}) as KubeconfigFile;
    } catch (err) {
      throw new Error(`cannot read kubeconfig ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const dir = dirname(file);
    current ??= doc["current-context"] || undefined;
    for (const c of doc.clusters ?? []) if (!clusters.has(c.name)) clusters.set(c.name, { cluster: c.cluster ?? {}, dir });
    for (const u of doc.users ?? []) if (!users.has(u.name)) users.set(u.name, { user: u.user ?? {}, dir });
    for (const c of doc.contexts ?? []) if (!contexts.has(c.name)) contexts.set(c.name, c.context ?? {});
  }
  const where = files.join(delimiter);
  if (!current) throw new Error(`kubeconfig ${where} has no current-context`);
  const context = contexts.get(current);
  if (!context) throw new Error(`kubeconfig ${where}: current-context ${current} is not among its contexts`);
  const cl = context.cluster !== undefined ? clusters.get(context.cluster) : undefined;
  if (!cl) throw new Error(`kubeconfig ${where}: context ${current} names no known cluster`);
  const c = cl.cluster;
  const server = String(c.server ?? "").replace(/\/+$/, "");
  if (!/^https?:\/\//.test(server)) throw new Error(`kubeconfig ${where}: cluster ${context.cluster} has no http(s) server`);
  if (c["proxy-url"]) throw new Error(`kubeconfig ${where}: cluster ${context.cluster} uses proxy-url, which the executor does not support`);
  const u = (context.user !== undefined ? users.get(context.user) : undefined) ?? { user: {}, dir: cl.dir };
  const user = u.user;
  if (user["auth-provider"]) {
    throw new Error(`kubeconfig ${where}: user ${context.user} uses an auth-provider, which the executor does not support; use a token, a client certificate or an exec credential plugin`);
  }
  const material = (data: unknown, file: unknown, dir: string): string | undefined => {
    if (typeof data === "string" && data) return Buffer.from(data, "base64").toString("utf8");
    if (typeof file === "string" && file) return readFileSync(isAbsolute(file) ? file : join(dir, file), "utf8");
    return undefined;
  };
  let authorization: KubeAccess["authorization"] = async () => undefined;
  if (typeof user.token === "string" && user.token) {
    const header = `Bearer ${user.token}`;
    authorization = async () => header;
  } else if (typeof user.tokenFile === "string" && user.tokenFile) {
    authorization = tokenFile(isAbsolute(user.tokenFile) ? user.tokenFile : join(u.dir, user.tokenFile));
  } else if (typeof user.username === "string" && typeof user.password === "string") {
    const header = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString("base64")}`;
    authorization = async () => header;
  } else if (user.exec) {
    authorization = execCredential(user.exec as ExecConfig, u.dir);
  }
  const access: KubeAccess = {
    server,
    insecure: c["insecure-skip-tls-verify"] === true,
    authorization,
  };
  const ca = material(c["certificate-authority-data"], c["certificate-authority"], cl.dir);
  const cert = material(user["client-certificate-data"], user["client-certificate"], u.dir);
  const key = material(user["client-key-data"], user["client-key"], u.dir);
  if (ca) access.ca = ca;
  if (cert) access.cert = cert;
  if (key) access.key = key;
  if (typeof c["tls-server-name"] === "string") access.serverName = c["tls-server-name"];
  return access;
}

/** A token file (a projected ServiceAccount token rotates): read again after a minute. */
function tokenFile(file: string): KubeAccess["authorization"] {
  let cached: { header: string; at: number } | undefined;
  return async () => {
    if (!cached || Date.now() - cached.at > 60_000) cached = { header: `Bearer ${readFileSync(file, "utf8").trim()}`, at: Date.now() };
    return cached.header;
  };
}

interface ExecConfig { command: string; args?: string[]; env?: { name: string; value: string }[]; apiVersion?: string }

/** client.authentication.k8s.io exec plugins (cloud providers' kubeconfigs): the token it prints, until it expires. */
function execCredential(exec: ExecConfig, dir: string): KubeAccess["authorization"] {
  let cached: { header: string; until: number } | undefined;
  let pending: Promise<string> | undefined;
  const run = () => new Promise<string>((resolve, reject) => {
    const command = exec.command.includes("/") && !isAbsolute(exec.command) ? join(dir, exec.command) : exec.command;
    const env = { ...process.env, ...Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value])) };
    env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion: exec.apiVersion ?? "client.authentication.k8s.io/v1", kind: "ExecCredential", spec: { interactive: false } });
    execFile(command, exec.args ?? [], { env, timeout: 60_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) return reject(new Error(`kubeconfig exec plugin ${exec.command} failed: ${err.message.split("\n")[0]}`));
      try {
        const status = (JSON.parse(stdout) as { status?: { token?: string; expirationTimestamp?: string } }).status;
        if (!status?.token) throw new Error("no status.token");
        const expiry = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) : NaN;
        cached = { header: `Bearer ${status.token}`, until: Number.isFinite(expiry) ? expiry - 60_000 : Date.now() + 10 * 60_000 };
        resolve(cached.header);
      } catch (e) {
        reject(new Error(`kubeconfig exec plugin ${exec.command} printed no usable ExecCredential (${e instanceof Error ? e.message : String(e)})`));
      }
    });
  });
  return async () => {
    if (cached && Date.now() < cached.until) return cached.header;
    pending ??= run().finally(() => { pending = undefined; });
    return pending;
  };
}
