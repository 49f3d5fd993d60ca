// The committed validator code is exactly what the schemas compile to.
import { readFileSync, writeFileSync } from "node:fs";
import { expect, it } from "vitest";
import { requestValidatorsSource } from "../compiler/gen-request-validators.ts";

const FILE = "runtime/request-validators.generated.mjs";

it("runtime/request-validators.generated.mjs is regenerated from runtime/request-schemas.ts", () => {
  const source = requestValidatorsSource();
  if (process.env.GWC_UPDATE_GOLDEN === "1") writeFileSync(FILE, source);
  expect(readFileSync(FILE, "utf8"), "run `npm run golden` after changing runtime/request-schemas.ts").toBe(source);
});
