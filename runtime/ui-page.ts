// The dashboard page. compiler/build-self.mjs builds it from runtime/ui/ into
// build/ui.html; `gwc build` inlines that text into the bundle (as
// __GWC_UI_PAGE__), so a built gateway serves it with no file beside it.
import { readFileSync } from "node:fs";

declare const __GWC_UI_PAGE__: string | undefined;

let page: string | undefined;

export function uiPage(): string {
  page ??= typeof __GWC_UI_PAGE__ === "string" ? __GWC_UI_PAGE__ : readFileSync(new URL("../build/ui.html", import.meta.url), "utf8");
  return page;
}
