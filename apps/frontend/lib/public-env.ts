/**
 * Every NEXT_PUBLIC_* value the app reads, in one place.
 *
 * Next.js inlines `process.env.NEXT_PUBLIC_*` into the bundle at build time, so each key read
 * here must also be an ARG + ENV in the Dockerfile's build stage; keeping the reads in this one
 * module is what makes that list easy to check (tests/public-env.test.ts does). Each read must
 * stay a plain `process.env.` property access with the full key written out: a computed key is
 * not inlined.
 */

const DEFAULT_APP_URL = "http://localhost:3000";

/** The public origin the app is served from; used for absolute URLs in page metadata. */
export const publicAppUrl: string = process.env.NEXT_PUBLIC_APP_URL || DEFAULT_APP_URL;

/** The keys above, for the build-time check and for tooling that compares them to the Dockerfile. */
export const PUBLIC_ENV_KEYS = ["NEXT_PUBLIC_APP_URL"] as const;

/** Returns a one-line description of the first bad NEXT_PUBLIC_* value, or null when all are usable. */
export function checkPublicEnv(appUrl: string = publicAppUrl): string | null {
  let parsed: URL;
  try {
    parsed = new URL(appUrl);
  } catch {
    return `NEXT_PUBLIC_APP_URL must be an absolute URL such as ${DEFAULT_APP_URL}, got "${appUrl}".`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `NEXT_PUBLIC_APP_URL must start with http:// or https://, got "${appUrl}".`;
  }
  return null;
}
