import type { ReactNode } from "react";

/** The backend's Swagger UI, served through the /api proxy route. */
export const API_DOCS_PATH = "/api/docs";

/**
 * A full-page link to the API docs. Not `<Link>`: the target is the proxy route handler, not a
 * Next page, so a client-side (RSC) navigation and prefetch would only ask the backend for
 * something it cannot answer and then fall back to this plain navigation anyway.
 */
export function ApiDocsLink({ className, children }: { className?: string; children: ReactNode }) {
  return (
    <a className={className} href={API_DOCS_PATH}>
      {children}
    </a>
  );
}
