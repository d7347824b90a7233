"use client";

import { type ChangeEvent, useState } from "react";
import useSWR from "swr";
import useSWRMutation from "swr/mutation";

import { ApiError, errorMessage, postFile, postJson, requestJson } from "@/lib/api-client";
import {
  describeMatchingRun,
  describeStatementUpload,
  formatAmount,
  formatMatchRate,
  type PendingLine,
  readPendingLines,
  readReconciliationStats,
  type ReconciliationStats,
} from "@/lib/backend-responses";

import { ErrorState, Loading } from "./status-messages";

export const STATS_PATH = "/api/reconciliation/stats";
export const PENDING_PATH = "/api/reconciliation/pending";
export const RUN_MATCHING_PATH = "/api/reconciliation/run";
export const STATEMENTS_PATH = "/api/statements";
/** The multipart field the backend's upload endpoint reads the file from. */
export const STATEMENT_FILE_FIELD = "file";

async function fetchStats(path: string): Promise<ReconciliationStats> {
  return readReconciliationStats(await requestJson(path));
}

async function fetchPending(path: string): Promise<PendingLine[]> {
  return readPendingLines(await requestJson(path));
}

async function runMatching(path: string): Promise<string> {
  return describeMatchingRun(await postJson(path));
}

async function uploadStatement(path: string, { arg: file }: { arg: File }): Promise<string> {
  return describeStatementUpload(await postFile(path, STATEMENT_FILE_FIELD, file), file.name);
}

/**
 * The reconciliation workbench: where matching stands, the statement lines still unmatched,
 * and the two actions that change that (import a statement, run matching).
 */
export function ReconciliationWorkbench() {
  const stats = useSWR(STATS_PATH, fetchStats);
  const pending = useSWR(PENDING_PATH, fetchPending);
  const run = useSWRMutation(RUN_MATCHING_PATH, runMatching, { throwOnError: false });
  const upload = useSWRMutation(STATEMENTS_PATH, uploadStatement, { throwOnError: false });
  // Only the latest action's outcome is shown, so an old success never sits next to a new error.
  const [lastAction, setLastAction] = useState<"run" | "upload" | null>(null);

  function refresh(): void {
    void stats.mutate();
    void pending.mutate();
  }

  async function onRunMatching(): Promise<void> {
    setLastAction("run");
    if ((await run.trigger()) !== undefined) {
      refresh();
    }
  }

  async function onFileChosen(event: ChangeEvent<HTMLInputElement>): Promise<void> {
    const input = event.currentTarget;
    const file = input.files?.[0];
    if (!file) {
      return;
    }
    setLastAction("upload");
    const outcome = await upload.trigger(file);
    // Clear the input so choosing the same (now fixed) file again fires another upload.
    input.value = "";
    if (outcome !== undefined) {
      refresh();
    }
  }

  const loadError = stats.error ?? pending.error;
  if (stats.isLoading || pending.isLoading) {
    return <Loading what="reconciliation data" />;
  }
  if (loadError && (!stats.data || !pending.data)) {
    return (
      <ErrorState
        message={errorMessage(loadError)}
        onRetry={refresh}
        retrying={stats.isValidating || pending.isValidating}
      />
    );
  }
  if (!stats.data || !pending.data) {
    return null;
  }

  const busy = run.isMutating || upload.isMutating;
  return (
    <>
      <StatsPanel stats={stats.data} />

      <section className="panel" aria-labelledby="actions-heading">
        <h2 id="actions-heading">Actions</h2>
        <div className="actions">
          <label className="file-picker">
            <span>Import a CSV statement</span>
            <input
              type="file"
              accept=".csv,text/csv"
              data-testid="upload-input"
              onChange={(event) => void onFileChosen(event)}
              disabled={busy}
            />
          </label>
          <button type="button" data-testid="run-matching" onClick={() => void onRunMatching()} disabled={busy}>
            {run.isMutating ? "Matching…" : "Run matching"}
          </button>
        </div>
        <div aria-live="polite">
          {upload.isMutating && <p className="muted">Uploading…</p>}
          {lastAction === "upload" && upload.error && <UploadError error={upload.error} />}
          {lastAction === "upload" && !upload.error && upload.data && (
            <p className="inline-success" data-testid="upload-result">
              {upload.data}
            </p>
          )}
          {lastAction === "run" && run.error && (
            <p className="inline-error" role="alert" data-testid="run-error">
              Matching failed: {errorMessage(run.error)}
            </p>
          )}
          {lastAction === "run" && !run.error && run.data && (
            <p className="inline-success" data-testid="run-result">
              {run.data}
            </p>
          )}
        </div>
      </section>

      <PendingPanel lines={pending.data} />
    </>
  );
}

function StatsPanel({ stats }: { stats: ReconciliationStats }) {
  return (
    <section className="panel" aria-labelledby="stats-heading">
      <h2 id="stats-heading">Where matching stands</h2>
      <dl className="stats">
        <div>
          <dt>Matched</dt>
          <dd data-testid="stats-matched">{stats.matched}</dd>
        </div>
        <div>
          <dt>Unmatched statement lines</dt>
          <dd data-testid="stats-unmatched-lines">{stats.unmatchedStatementLines}</dd>
        </div>
        <div>
          <dt>Unmatched journal entries</dt>
          <dd data-testid="stats-unmatched-entries">{stats.unmatchedJournalEntries}</dd>
        </div>
        <div>
          <dt>Match rate</dt>
          <dd data-testid="stats-match-rate">{formatMatchRate(stats.matchRate)}</dd>
        </div>
      </dl>
    </section>
  );
}

/** The backend rejects a bad file with 422 `{detail, code}`; detail names the offending line. */
function UploadError({ error }: { error: unknown }) {
  const code = error instanceof ApiError ? error.code : null;
  return (
    <p className="inline-error" role="alert" data-testid="upload-error" data-code={code ?? undefined}>
      Upload rejected: {errorMessage(error)}
    </p>
  );
}

function PendingPanel({ lines }: { lines: PendingLine[] }) {
  return (
    <section className="panel" aria-labelledby="pending-heading">
      <h2 id="pending-heading">Pending statement lines ({lines.length})</h2>
      <ul className="pending" data-testid="pending-list">
        {lines.length === 0 && (
          <li className="muted pending-empty" data-testid="pending-empty">
            Nothing pending: every imported line is matched.
          </li>
        )}
        {lines.map((line) => (
          <li key={line.id} data-testid="pending-line">
            <span className="pending-date">{line.date}</span>
            <span className="pending-description">{line.description}</span>
            <span className="pending-amount">{formatAmount(line.amount)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
