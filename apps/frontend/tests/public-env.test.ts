// @vitest-environment node
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import { checkPublicEnv, PUBLIC_ENV_KEYS } from "@/lib/public-env";

describe("checkPublicEnv", () => {
  it("accepts http and https origins", () => {
    expect(checkPublicEnv("http://localhost:3000")).toBeNull();
    expect(checkPublicEnv("https://finance.example.com")).toBeNull();
  });

  it("names the key and the bad value in one line", () => {
    expect(checkPublicEnv("finance.example.com")).toBe(
      'NEXT_PUBLIC_APP_URL must be an absolute URL such as http://localhost:3000, got "finance.example.com".',
    );
    expect(checkPublicEnv("ftp://files.example.com")).toContain("must start with http:// or https://");
  });
});

const appRoot = new URL("..", import.meta.url).pathname;

describe("PUBLIC_ENV_KEYS", () => {
  it("names every NEXT_PUBLIC_* key the app's source reads", () => {
    const read = new Set<string>();
    for (const dir of ["app", "components", "lib"]) {
      for (const file of readdirSync(join(appRoot, dir), { recursive: true, encoding: "utf8" })) {
        if (/\.tsx?$/.test(file)) {
          const source = readFileSync(join(appRoot, dir, file), "utf8");
          for (const match of source.matchAll(/process\.env\.(NEXT_PUBLIC_\w+)/g)) {
            read.add(match[1]);
          }
        }
      }
    }
    expect([...read].sort()).toEqual([...PUBLIC_ENV_KEYS].sort());
  });
});

describe("the Dockerfile", () => {
  it("declares every NEXT_PUBLIC_* key the app reads as a build ARG and ENV", () => {
    // Next.js inlines these at build time: a key missing here would be undefined in the image.
    const dockerfile = readFileSync(join(appRoot, "Dockerfile"), "utf8");
    for (const key of PUBLIC_ENV_KEYS) {
      expect(dockerfile).toMatch(new RegExp(`^ARG ${key}=`, "m"));
      expect(dockerfile).toMatch(new RegExp(`^ENV ${key}=\\$${key}`, "m"));
    }
  });
});
