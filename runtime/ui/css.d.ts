// Styles are bundled by esbuild into the page (compiler/build-self.mjs).
declare module "*.css";
