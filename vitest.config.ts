import { defineConfig } from "vitest/config";

// Slow suites (real processes under faults, real Redis, real CLIs, a real
// browser) are projects of their own, so they can be run alone
// (`vitest run --project faults`) and each is bounded in time.
const SLOW = ["faults", "redis", "clients", "browser"];

export default defineConfig({
  test: {
    // Generous: CI runs the projects side by side on 2 cores.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: SLOW.map((s) => `test/${s}/**`) } },
      ...SLOW.map((name) => ({ extends: true, test: { name, include: [`test/${name}/**/*.test.ts`], testTimeout: 120_000 } })),
    ],
  },
});
