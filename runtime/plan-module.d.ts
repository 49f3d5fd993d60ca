// The emitted plan, supplied by the compiler when it bundles the runtime.
declare module "gwc:plan" {
  export const plan: import("./plan.ts").Plan;
}
