import { render, type RenderResult } from "@testing-library/react";
import type { ReactElement } from "react";
import { SWRConfig } from "swr";

/**
 * Renders a page component with a fresh SWR cache, so no test sees data another test loaded,
 * and with the same no-automatic-retry setting the app uses.
 */
export function renderPage(page: ReactElement): RenderResult {
  return render(
    <SWRConfig value={{ provider: () => new Map(), dedupingInterval: 0, shouldRetryOnError: false }}>{page}</SWRConfig>,
  );
}
