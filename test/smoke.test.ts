import { describe, expect, it } from "vitest";
import { fromConfig } from "../compiler/testing.ts";

describe("smoke", () => {
  it("70/30", () => {
    const gw = fromConfig({ accounts: [{ id: "a", provider: "openai", weight: 70 }, { id: "b", provider: "anthropic", weight: 30 }] });
    expect(gw.distribution()).toEqual([
      { account: "a", numerator: 7, denominator: 10 },
      { account: "b", numerator: 3, denominator: 10 },
    ]);
  });
});
