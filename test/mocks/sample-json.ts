/**
 * A deterministic value of a JSON schema, for the mocks' tool-call arguments and
 * structured (JSON-mode) answers. Strings are `text`, numbers 1, booleans true,
 * arrays one item; enums and consts take their first value. Types are matched
 * case-insensitively (Gemini writes `OBJECT`, `STRING`).
 */
export function sampleOf(schema: any, text: string): unknown {
  if (schema === null || typeof schema !== "object") return null;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const alt = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(alt) && alt.length > 0) return sampleOf(alt.find((s: any) => s?.type !== "null") ?? alt[0], text);
  const type = String((Array.isArray(schema.type) ? schema.type.find((t: string) => t !== "null") : schema.type) ?? (schema.properties ? "object" : "")).toLowerCase();
  switch (type) {
    case "string":
      return text;
    case "number":
    case "integer":
      return 1;
    case "boolean":
      return true;
    case "array":
      return [sampleOf(schema.items, text)];
    case "object":
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, sampleOf(v, text)]));
    default:
      return null;
  }
}
