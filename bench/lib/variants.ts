// Bench-only WorkflowStepDefinitions that split the overhead of `http-request` over `request`
// into its parts. Installed into the bench's control plane only; never part of the addon.
//   bench-request-1read         the built-in `request` template plus the kube.#Read our definitions
//                               make (Secret step-executor of the Application's namespace)
//   bench-http-request-noreads  our assembled `http-request` with that read replaced by constants
//                               (the executor URL written into the template, the namespace's key
//                               computed in CUE from the token)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { vela } from "./cluster.js";

export const VARIANT_NOTES = [
  "- `bench-request-1read`: the built-in `request` template plus the `kube.#Read` (Secret `step-executor` of the Application's namespace: the executor's URL and the namespace's key) that every evaluation of our definitions makes first.",
  "- `bench-http-request-noreads`: our assembled `http-request` definition with that read replaced by constants (URL inlined, the namespace's key computed in CUE), i.e. what is left is the HMAC/JSON CUE, the call to the executor and the `#Message` on success.",
];

const REQUEST_1READ = `import (
	"vela/op"
	"vela/http"
	"vela/kube"
	"encoding/json"
)

"bench-request-1read": {
	type: "workflow-step"
	annotations: {}
	labels: {}
	description: "bench only: the built-in request plus the read of the step-executor definitions"
}
template: {
	keyring: kube.#Read & {$params: value: {
		apiVersion: "v1"
		kind:       "Secret"
		metadata: {name: "step-executor", namespace: context.namespace}
	}}
	if keyring.$returns != _|_ {
		req: http.#HTTPDo & {
			$params: {
				method: parameter.method
				url:    parameter.url
				request: {
					if parameter.body != _|_ {
						body: json.Marshal(parameter.body)
					}
					if parameter.header != _|_ {
						header: parameter.header
					}
				}
			}
		}
		wait: op.#ConditionalWait & {
			continue: req.$returns != _|_
			message?: "Waiting for response from \\(parameter.url)"
		}
		fail: op.#Steps & {
			if req.$returns.statusCode > 400 {
				requestFail: op.#Fail & {
					message: "request of \\(parameter.url) is fail: \\(req.$returns.statusCode)"
				}
			}
		}
		response: json.Unmarshal(req.$returns.body)
	}
	parameter: {
		url:    string
		method: *"GET" | "POST" | "PUT" | "DELETE"
		body?: {...}
		header?: [string]: string
	}
}
`;

export async function installVariants(addonDir: string, workDir: string, executorURL: string, token: string): Promise<void> {
  const assembled = readFileSync(join(addonDir, "definitions", "http-request.cue"), "utf8");
  const renamed = assembled.replace(/^"http-request": \{/m, '"bench-http-request-noreads": {');
  const noReads = renamed.replace(
    /\t\tkeyring: #Read & \{\$params: value: \{[\s\S]*?\}\}\n/,
    `\t\tkeyring: $returns: value: {\n` +
    `\t\t\tmetadata: annotations: "step-executor.oam.dev/url": ${JSON.stringify(executorURL)}\n` +
    // server/http/auth.ts namespaceKey, in CUE: the key the executor writes for the Application's namespace.
    `\t\t\tdata: key: base64.Encode(null, hex.Encode(hmac.Sign("SHA256", '${token}', "step-executor namespace key v1\\n" + context.namespace)))\n` +
    `\t\t}\n`,
  );
  if (!/^[0-9a-f]+$/.test(token)) throw new Error("bench/lib/variants.ts: the token must be hex to be inlined as a CUE bytes literal");
  if (renamed === assembled || noReads === renamed) {
    throw new Error("bench/lib/variants.ts: the assembled http-request definition no longer has the expected shape (name or keyring read); update the variant");
  }
  const files = { "bench-request-1read.cue": REQUEST_1READ, "bench-http-request-noreads.cue": noReads };
  for (const [name, text] of Object.entries(files)) {
    const path = join(workDir, name);
    writeFileSync(path, text);
    await vela("def", "apply", path, "-n", "vela-system");
  }
}

/**
 * bench-wait-object: what a user can build from KubeVela's built-in providers alone to wait for a
 * condition: kube.#Read the object, then builtin.#ConditionalWait until data.enabled == "true".
 * (The built-in `read-object` step reads once and cannot wait.)
 */
export const WAIT_OBJECT = `import (
	"vela/kube"
	"vela/builtin"
)

"bench-wait-object": {
	type: "workflow-step"
	annotations: {}
	labels: {}
	description: "bench only: wait until a ConfigMap has data.enabled == \\"true\\", with built-in providers"
}
template: {
	read: kube.#Read & {$params: value: {
		apiVersion: "v1"
		kind:       "ConfigMap"
		metadata: {name: parameter.name, namespace: context.namespace}
	}}
	ready: *false | bool
	if read.$returns.value.data.enabled != _|_ {
		ready: read.$returns.value.data.enabled == "true"
	}
	if read.$returns != _|_ {
		wait: builtin.#ConditionalWait & {$params: {
			continue: ready
			message:  "waiting for ConfigMap \\(parameter.name): data.enabled is not true"
		}}
	}
	parameter: {
		// +usage=The ConfigMap to wait for, in the Application's namespace
		name: string
	}
}
`;

export async function installWaitDefinition(workDir: string): Promise<void> {
  const path = join(workDir, "bench-wait-object.cue");
  writeFileSync(path, WAIT_OBJECT);
  await vela("def", "apply", path, "-n", "vela-system");
}
