"use client";

/** Shown while a page's first request is in flight. */
export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" data-testid="loading" aria-busy="true">
      Loading {what}…
    </p>
  );
}

/**
 * Shown when a page could not load its data (typically: the backend is down and the proxy
 * answered 503). Retry re-runs the same requests instead of asking the person to reload.
 */
export function ErrorState({
  message,
  onRetry,
  retrying,
}: {
  message: string;
  onRetry: () => void;
  retrying: boolean;
}) {
  return (
    <div className="panel error-state" role="alert" data-testid="error-state">
      <p>
        <strong>Could not load this page&apos;s data.</strong> {message}
      </p>
      <button type="button" data-testid="retry-button" onClick={onRetry} disabled={retrying}>
        {retrying ? "Retrying…" : "Retry"}
      </button>
    </div>
  );
}
