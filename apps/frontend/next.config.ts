import type { NextConfig } from "next";

import { checkPublicEnv } from "./lib/public-env";

// A mistyped NEXT_PUBLIC_* value would otherwise be baked into the bundle and only fail in a
// browser; stop the build (and `next dev`) with one line that says which key to fix.
const publicEnvProblem = checkPublicEnv();
if (publicEnvProblem) {
  console.error(`error: ${publicEnvProblem}`);
  process.exit(1);
}

const nextConfig: NextConfig = {
  // The Docker image ships only .next/standalone (server.js + the traced node_modules).
  output: "standalone",
  // Pin both roots to this app: without them Next guesses the monorepo root from lockfiles
  // further up, warns about it, and nests server.js under apps/frontend/ in the standalone tree.
  outputFileTracingRoot: __dirname,
  turbopack: { root: __dirname },
  // `next dev` would otherwise write AGENTS.md into the work tree whenever it runs under a coding
  // agent, leaving the repository dirty after every nox dev/smoke session.
  agentRules: false,
  // `nox -s dev` prints http://127.0.0.1:3000 and people also type http://localhost:3000; Next
  // blocks its dev resources (/_next/hmr, the client chunks) for any origin it does not know, and
  // a blocked HMR socket leaves every page on its loading placeholder. Both loopback names are
  // the same machine, so both are allowed; nothing else is (`next dev` listens on 127.0.0.1 only).
  allowedDevOrigins: ["127.0.0.1", "localhost"],
  poweredByHeader: false,
  cacheComponents: true,
  partialPrefetching: true,
};

export default nextConfig;
