// The schema is the config's documentation in editors: every property explains itself.
import { describe, expect, it } from "vitest";
import schema from "../schemas/gateway.schema.json" with { type: "json" };

function undocumented(node: unknown, path: string, out: string[]): string[] {
  if (node === null || typeof node !== "object") return out;
  const n = node as Record<string, unknown>;
  if (n.properties && typeof n.properties === "object") {
    for (const [name, prop] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
      if (typeof prop.description !== "string" || prop.description.length < 10) out.push(`${path}/properties/${name}`);
    }
  }
  for (const [k, v] of Object.entries(n)) undocumented(v, `${path}/${k}`, out);
  return out;
}

describe("gateway.schema.json", () => {
  it("gives every property a description", () => {
    expect(undocumented(schema, "#", [])).toEqual([]);
  });
  it("rejects unknown properties in every object", () => {
    const open: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (node === null || typeof node !== "object") return;
      const n = node as Record<string, unknown>;
      if (n.type === "object" && n.properties !== undefined && n.additionalProperties !== false) open.push(path);
      for (const [k, v] of Object.entries(n)) walk(v, `${path}/${k}`);
    };
    walk(schema, "#");
    expect(open).toEqual([]);
  });
});
