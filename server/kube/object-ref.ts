// What an object reference may contain before any part of it goes into an API server path.
// The API server decodes %2F in a path segment, so a name such as "tenant-b/secrets/x" — or an
// apiVersion such as "../api/v1" — would otherwise address another object than the one the
// step named (SECURITY.md, "Object references"). Checked where a step's parameters are
// prepared (a clear message at once) and again in server/kube/kube.ts, the one door to the API.
import { InputError } from "../shared/errors.js";

/** An object a step names; `cluster` names a managed cluster (KubeVela's cluster-gateway), empty or absent: the hub. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  cluster?: string;
}

/** An object as read from the API server. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; generation?: number; labels?: Record<string, string>; annotations?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

/** DNS-1123 label: namespaces. */
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** DNS-1123 subdomain: API groups. */
const SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** DNS-1035 label: API versions (v1, v1beta1, v2alpha3, and what CRDs may name). */
const VERSION = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Kinds are CamelCase identifiers. */
const KIND = /^[A-Za-z][A-Za-z0-9]{0,62}$/;

/** Why `value` is not usable as the name of an object, or undefined when it is. */
export function nameProblem(value: string): string | undefined {
  if (value === "") return "must not be empty";
  if (value.length > 253) return "is longer than 253 characters";
  // The API server's own rule for names in paths (IsValidPathSegmentName), plus what decodes to it.
  if (value === "." || value === "..") return `"${value}" is not a name`;
  if (/[/%\\]/.test(value)) return `"${excerpt(value)}" contains "/", "%" or "\\", which no object name may contain`;
  if (/[\u0000-\u001f\u007f\s?#]/.test(value)) return `"${excerpt(value)}" contains white space, a control character, "?" or "#"`;
  return undefined;
}

/** KubeVela's name of the hub (multicluster.ClusterLocalName): `""` and `"local"` both mean no managed cluster. */
export function managedCluster(cluster: string | undefined): string | undefined {
  return cluster === undefined || cluster === "" || cluster === "local" ? undefined : cluster;
}

/** Why `value` is not usable as a cluster name (KubeVela's clusters are Secrets in vela-system: DNS-1123 subdomains). */
export function clusterProblem(value: string): string | undefined {
  return SUBDOMAIN.test(value) ? undefined : `"${excerpt(value)}" is not a cluster name (lower-case letters, digits, "-" and ".", as vela cluster list shows them)`;
}

export function namespaceProblem(value: string): string | undefined {
  return LABEL.test(value) ? undefined : `"${excerpt(value)}" is not a namespace name (lower-case letters, digits and "-", at most 63)`;
}

export function apiVersionProblem(value: string): string | undefined {
  const slash = value.indexOf("/");
  const [group, version] = slash < 0 ? ["", value] : [value.slice(0, slash), value.slice(slash + 1)];
  if ((slash < 0 || SUBDOMAIN.test(group)) && VERSION.test(version)) return undefined;
  return `"${excerpt(value)}" is not an apiVersion (such as v1 or apps/v1)`;
}

export function kindProblem(value: string): string | undefined {
  return KIND.test(value) ? undefined : `"${excerpt(value)}" is not a kind (such as Deployment)`;
}

/** Throws an InputError naming the field when any part of the reference could leave the object it names. */
export function checkObjectRef(ref: { apiVersion: string; kind: string; name: string; namespace?: string; cluster?: string }, fields: { apiVersion: string; kind: string; name: string; namespace: string; cluster?: string }): void {
  const problems: [string, string | undefined][] = [
    [fields.cluster ?? "cluster", ref.cluster ? clusterProblem(ref.cluster) : undefined],
    [fields.apiVersion, apiVersionProblem(ref.apiVersion)],
    [fields.kind, kindProblem(ref.kind)],
    [fields.name, nameProblem(ref.name)],
    [fields.namespace, ref.namespace === undefined || ref.namespace === "" ? undefined : namespaceProblem(ref.namespace)],
  ];
  for (const [field, problem] of problems) if (problem) throw new InputError(`${field}: ${problem}`);
}

/** The core API's Secrets, however the reference spelled them: steps never read them as objects. */
export function isSecretResource(group: string, resource: string): boolean {
  return group === "" && resource === "secrets";
}

function excerpt(value: string): string {
  const printable = value.replace(/[\u0000-\u001f\u007f]/g, "?");
  return printable.length > 80 ? `${printable.slice(0, 77)}...` : printable;
}
