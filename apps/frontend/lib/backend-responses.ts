/**
 * Turns the backend's JSON answers into the small shapes the pages render.
 *
 * The readers are deliberately forgiving: the backend is developed alongside this app, and a
 * renamed field or a check reported as `{status: "ok"}` instead of `"ok"` should show as a
 * slightly less detailed page, not as a crash. Anything that cannot be read at all becomes an
 * ApiError, which the pages show in their error state.
 */
import { ApiError, isRecord } from "./api-client";

/** The checks the dashboard always lists, in this order, even when the backend omits one. */
export const EXPECTED_HEALTH_CHECKS = ["database", "redis", "s3"] as const;

export interface CheckResult {
  ok: boolean;
  /** Why a check failed (or extra detail for a passing one), when the backend said. */
  detail: string | null;
}

export interface HealthReport {
  healthy: boolean;
  status: string;
  timestamp: string | null;
  gitSha: string | null;
  checks: Array<{ name: string } & CheckResult>;
}

export interface PingState {
  state: string;
  toggleCount: number;
  updatedAt: string | null;
}

export interface ReconciliationStats {
  matched: number | null;
  unmatchedStatementLines: number | null;
  unmatchedJournalEntries: number | null;
  /** Between 0 and 1, whichever scale the backend used. */
  matchRate: number | null;
}

export interface PendingLine {
  id: string;
  date: string;
  description: string;
  amount: string;
}

const PASSING_WORDS = new Set(["ok", "healthy", "up", "pass", "passed", "true", "available"]);
const BARE_STATUS_WORDS = new Set([...PASSING_WORDS, "failed", "fail", "error", "down", "unhealthy", "false"]);

/** True when a health body carries checks, so even a 503 answer is a report worth showing. */
export function looksLikeHealthReport(body: unknown): boolean {
  return isRecord(body) && isRecord(body.checks);
}

export function readHealthReport(body: unknown): HealthReport {
  if (!looksLikeHealthReport(body)) {
    throw new ApiError("The backend's health answer has no checks.", 200);
  }
  const report = body as Record<string, unknown>;
  const rawChecks = report.checks as Record<string, unknown>;
  const names = [
    ...EXPECTED_HEALTH_CHECKS,
    ...Object.keys(rawChecks).filter((name) => !(EXPECTED_HEALTH_CHECKS as readonly string[]).includes(name)),
  ];
  const checks = names.map((name) =>
    name in rawChecks ? { name, ...readCheck(rawChecks[name]) } : { name, ok: false, detail: "not reported" },
  );
  const status = typeof report.status === "string" ? report.status : checks.every((c) => c.ok) ? "healthy" : "unhealthy";
  return {
    healthy: status === "healthy" || status === "ok",
    status,
    timestamp: readString(report, "timestamp"),
    gitSha: readString(report, "git_sha", "gitSha", "version"),
    checks,
  };
}

/** Reads one check, reported as a boolean, a word ("ok"), or an object with status/ok/error. */
export function readCheck(value: unknown): CheckResult {
  if (typeof value === "boolean") {
    return { ok: value, detail: null };
  }
  if (typeof value === "string") {
    const word = value.trim().toLowerCase();
    return { ok: PASSING_WORDS.has(word), detail: BARE_STATUS_WORDS.has(word) ? null : value };
  }
  if (isRecord(value)) {
    const detail = readString(value, "error", "detail", "message", "reason");
    for (const key of ["ok", "healthy", "up"]) {
      if (typeof value[key] === "boolean") {
        return { ok: value[key] as boolean, detail };
      }
    }
    if (typeof value.status === "string") {
      return { ok: PASSING_WORDS.has(value.status.trim().toLowerCase()), detail };
    }
    return { ok: false, detail: detail ?? "no status reported" };
  }
  return { ok: false, detail: "no status reported" };
}

export function readPingState(body: unknown): PingState {
  if (!isRecord(body) || typeof body.state !== "string") {
    throw new ApiError("The backend's ping answer has no state.", 200);
  }
  return {
    state: body.state,
    toggleCount: readNumber(body, "toggle_count", "toggleCount", "count") ?? 0,
    updatedAt: readString(body, "updated_at", "updatedAt", "toggled_at"),
  };
}

export function readReconciliationStats(body: unknown): ReconciliationStats {
  if (!isRecord(body)) {
    throw new ApiError("The backend's reconciliation stats are not an object.", 200);
  }
  const matched = readNumber(body, "matched", "matched_count", "matched_lines", "matches");
  const unmatchedStatementLines = readNumber(
    body,
    "unmatched_statement_lines",
    "unmatched_lines",
    "unmatched_statements",
    "unmatched_bank_lines",
  );
  const unmatchedJournalEntries = readNumber(
    body,
    "unmatched_journal_entries",
    "unmatched_entries",
    "unmatched_journal",
  );
  let matchRate = readNumber(body, "match_rate", "matchRate", "rate");
  if (matchRate !== null && matchRate > 1) {
    matchRate /= 100; // reported as a percentage
  }
  if (matchRate === null && matched !== null && unmatchedStatementLines !== null) {
    const total = matched + unmatchedStatementLines;
    matchRate = total > 0 ? matched / total : null;
  }
  return { matched, unmatchedStatementLines, unmatchedJournalEntries, matchRate };
}

/** Reads the pending lines, sent as a bare list or wrapped as `{items|lines|pending: [...]}`. */
export function readPendingLines(body: unknown): PendingLine[] {
  const list = Array.isArray(body)
    ? body
    : isRecord(body)
      ? [body.items, body.lines, body.pending, body.results].find(Array.isArray)
      : undefined;
  if (!list) {
    throw new ApiError("The backend's pending lines are not a list.", 200);
  }
  return list.filter(isRecord).map((line, index) => ({
    id: readString(line, "id") ?? String(readNumber(line, "id") ?? index),
    date: readString(line, "date", "transaction_date", "posted_at", "booked_at") ?? "",
    description: readString(line, "description", "memo", "narrative", "payee") ?? "",
    amount: readString(line, "amount") ?? String(readNumber(line, "amount") ?? ""),
  }));
}

/** A sentence about what a matching run did, from whatever count the backend returned. */
export function describeMatchingRun(body: unknown): string {
  const count = isRecord(body) ? readNumber(body, "matched", "new_matches", "matches_created", "created", "count") : null;
  if (count === null) {
    return "Matching finished.";
  }
  return `Matching finished: ${count} new ${count === 1 ? "match" : "matches"}.`;
}

/** A sentence about an accepted statement upload. */
export function describeStatementUpload(body: unknown, fileName: string): string {
  let count: number | null = null;
  if (isRecord(body)) {
    count = readNumber(body, "lines_imported", "line_count", "imported", "count", "lines");
    if (count === null && Array.isArray(body.lines)) {
      count = body.lines.length;
    }
  }
  if (count === null) {
    return `Uploaded ${fileName}.`;
  }
  return `Imported ${count} ${count === 1 ? "line" : "lines"} from ${fileName}.`;
}

const amountFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Formats a money amount (decimals arrive as strings to keep precision) with two decimals. */
export function formatAmount(amount: string): string {
  const value = Number(amount);
  return amount.trim() !== "" && Number.isFinite(value) ? amountFormat.format(value) : amount;
}

export function formatMatchRate(rate: number | null): string {
  return rate === null ? "—" : `${(rate * 100).toFixed(1)}%`;
}

export function formatCount(value: number | null): string {
  return value === null ? "—" : String(value);
}

/** Formats an ISO timestamp in the reader's locale and time zone; unparseable values as sent. */
export function formatTimestamp(value: string): string {
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? value : time.toLocaleString();
}

function readString(record: Record<string, unknown>, ...keys: string[]): string | null {
  for (const key of keys) {
    const value = record[key];
    if (typeof value === "string" && value !== "") {
      return value;
    }
  }
  return null;
}

function readNumber(record: Record<string, unknown>, ...keys: string[]): number | null {
  for (const key of keys) {
    const value = record[key];
    if (typeof value === "number" && Number.isFinite(value)) {
      return value;
    }
    if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) {
      return Number(value);
    }
  }
  return null;
}
