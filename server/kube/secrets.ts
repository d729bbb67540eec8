// Secret lookup in one place: by name, in the run's own namespace only, at the last moment,
// registered with the run's redactor before anyone can print it.
import type { KubeReader } from "./kube.js";
import type { Redactor } from "../shared/redact.js";

export interface SecretKeyRef {
  name: string;
  key: string;
}

/** The Secret or key does not exist (yet): the step waits, since it may be created later. */
export class SecretMissingError extends Error {}

export interface SecretResolver {
  resolve(ref: SecretKeyRef): Promise<string>;
  /** A value obtained with a Secret (an OAuth2 access token): redacted like the Secret's own. */
  register(value: string): void;
}

export function createSecretResolver(kube: KubeReader, namespace: string, redactor: Redactor): SecretResolver {
  return new RunSecrets(kube, namespace, redactor);
}

// A class, not an object of closures: every waiting run holds one.
class RunSecrets implements SecretResolver {
  constructor(private readonly kube: KubeReader, private readonly namespace: string, private readonly redactor: Redactor) {}

  async resolve(ref: SecretKeyRef): Promise<string> {
    const { namespace } = this;
    const data = await this.kube.readSecret(namespace, ref.name);
    if (!data) throw new SecretMissingError(`Secret ${namespace}/${ref.name} not found`);
    const value = data[ref.key];
    if (value === undefined) {
      const keys = Object.keys(data);
      throw new SecretMissingError(`Secret ${namespace}/${ref.name} has no key "${ref.key}"` +
        (keys.length ? ` (it has: ${keys.join(", ")})` : " (it is empty)"));
    }
    this.redactor.add(value);
    return value;
  }

  register(value: string): void {
    this.redactor.add(value);
  }
}
