"use client";

import Link from "next/link";
import useSWR from "swr";

import { errorMessage, requestJson } from "@/lib/api-client";
import { formatTimestamp, type HealthReport, looksLikeHealthReport, readHealthReport } from "@/lib/backend-responses";

import { ApiDocsLink } from "./api-docs-link";
import { ErrorState, Loading } from "./status-messages";

export const HEALTH_PATH = "/api/health";

async function fetchHealth(path: string): Promise<HealthReport> {
  // An unhealthy backend answers 503 with its checks: that is a report, not a failed request.
  return readHealthReport(await requestJson(path, {}, looksLikeHealthReport));
}

/** The dashboard: whether the backend and each service it depends on are up, and where to go next. */
export function HealthDashboard() {
  const { data, error, isLoading, isValidating, mutate } = useSWR(HEALTH_PATH, fetchHealth);

  return (
    <>
      <section className="panel" aria-labelledby="health-heading">
        <div className="panel-heading">
          <h2 id="health-heading">Backend health</h2>
          {data && (
            <button type="button" className="secondary" onClick={() => void mutate()} disabled={isValidating}>
              {isValidating ? "Checking…" : "Check again"}
            </button>
          )}
        </div>
        {isLoading && <Loading what="backend health" />}
        {error && !data && (
          <ErrorState message={errorMessage(error)} onRetry={() => void mutate()} retrying={isValidating} />
        )}
        {data && <HealthReportView report={data} />}
      </section>

      <nav className="cards" aria-label="Pages">
        <Link className="card" href="/ping-pong">
          <h2>Ping-pong</h2>
          <p>Toggle a shared state stored by the backend; the quickest end-to-end check.</p>
        </Link>
        <Link className="card" href="/reconciliation">
          <h2>Reconciliation</h2>
          <p>Upload bank statements, match them against the journal, review what is left.</p>
        </Link>
        <ApiDocsLink className="card">
          <h2>API docs</h2>
          <p>The backend&apos;s OpenAPI reference, with requests you can try.</p>
        </ApiDocsLink>
      </nav>
    </>
  );
}

function HealthReportView({ report }: { report: HealthReport }) {
  return (
    <>
      <p className="health-summary">
        Status:{" "}
        <span className={report.healthy ? "badge ok" : "badge failed"} data-testid="health-status">
          {report.status}
        </span>
      </p>
      <ul className="checks">
        {report.checks.map((check) => (
          <li key={check.name}>
            <span className="check-name">{check.name}</span>
            <span className={check.ok ? "badge ok" : "badge failed"} data-testid={`check-${check.name}`}>
              {check.ok ? "ok" : "failed"}
            </span>
            {check.detail && <span className="muted check-detail">{check.detail}</span>}
          </li>
        ))}
      </ul>
      <p className="muted small">
        {report.timestamp && (
          <>
            Checked <time dateTime={report.timestamp}>{formatTimestamp(report.timestamp)}</time>
          </>
        )}
        {report.gitSha && <> · build {report.gitSha.slice(0, 12)}</>}
      </p>
    </>
  );
}
