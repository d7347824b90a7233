"use client";

import type { ReactNode } from "react";
import { SWRConfig } from "swr";

/**
 * App-wide SWR settings. Automatic error retries are off: a backend that is down should show a
 * stable error with a Retry button, not flicker between error and loading while SWR backs off.
 * Revalidation on window focus stays on, so coming back to the tab refreshes the data.
 */
export function SwrProvider({ children }: { children: ReactNode }) {
  return <SWRConfig value={{ shouldRetryOnError: false }}>{children}</SWRConfig>;
}
