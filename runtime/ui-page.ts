// The dashboard. compiler/build-self.mjs builds the page (runtime/ui/) into
// build/ui.html and the compiler's checks for its config page into
// build/ui-compiler.js; `gwc build` inlines both into the bundle (as
// __GWC_UI_PAGE__ and __GWC_UI_COMPILER__), so a built gateway serves them
// with no file beside it. Run from source (tests), they are read from build/.
import { readFileSync } from "node:fs";

declare const __GWC_UI_PAGE__: string | undefined;
declare const __GWC_UI_COMPILER__: string | undefined;

let page: string | undefined;
let compiler: string | undefined;

const fromBuild = (name: string) => readFileSync(new URL(`../build/${name}`, import.meta.url), "utf8");

export function uiPage(): string {
  page ??= typeof __GWC_UI_PAGE__ === "string" ? __GWC_UI_PAGE__ : fromBuild("ui.html");
  return page;
}

export function uiCompiler(): string {
  compiler ??= typeof __GWC_UI_COMPILER__ === "string" ? __GWC_UI_COMPILER__ : fromBuild("ui-compiler.js");
  return compiler;
}
