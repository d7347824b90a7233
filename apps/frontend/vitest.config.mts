import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [react()],
  // Resolve the "@/..." imports the same way tsconfig.json (and so Next.js) does.
  resolve: { tsconfigPaths: true },
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.{ts,tsx}"],
    setupFiles: ["./tests/setup.ts"],
    // Each test stubs fetch or env for itself; undo that so no stub leaks into the next test.
    unstubGlobals: true,
    unstubEnvs: true,
    restoreMocks: true,
  },
});
