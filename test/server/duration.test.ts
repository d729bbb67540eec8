import { expect } from "chai";
import { formatDuration, parseDuration } from "../../server/shared/duration.js";
import { InputError } from "../../server/shared/errors.js";

describe("duration", () => {
  const ok: [string, number][] = [["10s", 10_000], ["1m30s", 90_000], ["500ms", 500], ["1.5h", 5_400_000], ["0", 0], ["2h0m1s", 7_201_000]];
  for (const [text, ms] of ok) it(`parses ${text}`, () => expect(parseDuration(text, "timeout")).to.equal(ms));
  for (const text of ["10", "ten seconds", "5 m", "", "1d", "-1s"]) {
    it(`rejects "${text}" naming the field`, () => expect(() => parseDuration(text, "timeout")).to.throw(InputError, /^timeout: .*not a duration/));
  }
  it("formats for people", () => {
    expect([450, 2000, 90_000, 120_000].map(formatDuration)).to.deep.equal(["450ms", "2s", "1m30s", "2m"]);
    expect([3_600_000, 5_400_000, 86_400_000, 259_200_000, 3_605_000].map(formatDuration)).to.deep.equal(["1h", "1h30m", "24h", "72h", "1h5s"]);
  });
});
