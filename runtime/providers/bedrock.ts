import type { Adapter } from "./adapter.ts";

/** Not written yet: accounts of this provider get no traffic (start-up says so). */
export const bedrockAdapter: Adapter | undefined = undefined;
