// github-actions checks that need no GitHub and no cluster: apiURL schemes, and what a GitHub
// error message may carry into a step's message.
import { expect } from "chai";
import { InputError } from "../../server/shared/errors.js";
import { describeGithubError } from "../../steps/github-actions/github-client.js";
import { Redactor, REDACTED } from "../../server/shared/redact.js";
import { githubActions } from "../../steps/github-actions/step.js";

const run = { namespace: "tenant", application: "app", step: "gh", session: "s1" };
const prepare = (apiURL: string) => () => githubActions.prepare({ owner: "acme", repo: "app", workflow: "deploy.yaml", ref: "main", apiURL, credentials: { token: { name: "gh" } } } as never, run);

describe("github-actions: apiURL and error messages", () => {
  it("refuses http:// except for loopback (the token would travel in clear)", () => {
    for (const url of ["http://github.example.com/api/v3", "http://10.0.0.5/api/v3", "http://[2002:808:808::1]/"]) {
      expect(prepare(url), url).to.throw(InputError, /^apiURL: ".*" would send the GitHub token unencrypted; use https:\/\/ \(http:\/\/ is accepted only for loopback addresses\)$/);
    }
    for (const url of ["http://127.0.0.1:8080", "http://localhost:3000/api/v3", "http://[::1]:9000", "https://github.example.com/api/v3"]) {
      expect(prepare(url), url).not.to.throw();
    }
    expect(prepare("http://169.254.169.254/")).to.throw(InputError, /^apiURL: 169\.254\.169\.254 is a link-local address/);
  });

  it("cuts a long GitHub error message; a token cut at the cut is masked by the run's redaction", () => {
    const token = "ghp_test0123456789abcdefABCDEF0123456789";
    const r = new Redactor();
    r.add(token);
    const err = (message: string) => Object.assign(new Error("x"), { response: { status: 401, headers: {}, data: { message } } });
    const f = describeGithubError(err("e".repeat(994) + token));
    expect(f.message).to.equal("e".repeat(994) + token.slice(0, 6) + "...");
    expect(r.apply(f.message)).to.equal("e".repeat(994) + REDACTED + "...");
    expect(describeGithubError(err("x".repeat(5_000_000))).message).to.have.length(1003);
  });
});
