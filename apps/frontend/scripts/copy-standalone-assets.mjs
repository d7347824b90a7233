// Completes .next/standalone after `next build`: the standalone server serves .next/static and
// public/ only when they sit next to it, and Next.js leaves copying them to us (they are meant
// for a CDN). With them in place, `npm run start` and the Docker image run the same tree.
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";

const standaloneDir = join(".next", "standalone");
if (!existsSync(join(standaloneDir, "server.js"))) {
  console.error(
    "error: .next/standalone/server.js is missing; run `next build` with output: \"standalone\" first.",
  );
  process.exit(1);
}
cpSync(join(".next", "static"), join(standaloneDir, ".next", "static"), { recursive: true });
if (existsSync("public")) {
  cpSync("public", join(standaloneDir, "public"), { recursive: true });
}
