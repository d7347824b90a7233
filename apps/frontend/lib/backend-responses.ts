/**
 * Turns the backend's JSON answers into the small shapes the pages render, strictly.
 *
 * The shapes come from the backend's OpenAPI document: `api-types.ts` is generated from it
 * (`nox -s api_types -- --fix`), and every decoder below is a zod schema whose output type must
 * equal the generated type of the fields it reads. A field the backend renames or drops therefore
 * fails twice before it reaches a user: the type check here (the generated type changed), and at
 * run time the decoder throws a ContractError that the page shows in its error state. Nothing
 * guesses alternative field names and nothing renders "—" for a value that did not arrive.
 */
import { z } from "zod";

import { ApiError, isRecord } from "./api-client";
import type { components, paths } from "./api-types";

type Schemas = components["schemas"];

/** The JSON body the OpenAPI document declares for one path, method and status. */
export type ApiAnswer<Path extends keyof paths, Method extends "get" | "post", Status extends number> = paths[Path][Method] extends {
  responses: infer Responses;
}
  ? Status extends keyof Responses
    ? Responses[Status] extends { content: { "application/json": infer Body } }
      ? Body
      : never
    : never
  : never;

/** True only when A and B are the same type (each assignable to the other). */
type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/**
 * Pins a zod schema to a generated API type: the call compiles only when the schema's output is
 * exactly `Expected`, so the hand-written schema can never drift from the generated one.
 */
function contract<Expected>() {
  return <Schema extends z.ZodType>(
    schema: Schema & (Exactly<z.output<Schema>, Expected> extends true ? unknown : { mismatchWith: Expected }),
  ): Schema => schema;
}

/** An answer whose shape is not the one the OpenAPI document promises. */
export class ContractError extends ApiError {
  constructor(what: string, error: z.ZodError) {
    const [first] = error.issues;
    const where = first && first.path.length > 0 ? first.path.join(".") : "the body";
    const problem = first ? `${where}: ${first.message}` : "unreadable";
    super(
      `The backend's ${what} does not match the API this page was built for (${problem}). ` +
        "Deploy the frontend and backend from the same commit.",
      200,
      "contract_mismatch",
    );
    this.name = "ContractError";
  }
}

function decode<Schema extends z.ZodType>(schema: Schema, body: unknown, what: string): z.output<Schema> {
  const result = schema.safeParse(body);
  if (!result.success) {
    throw new ContractError(what, result.error);
  }
  return result.data;
}

// ----- GET /api/health ---------------------------------------------------------------------

/** The checks the dashboard always lists, in this order, even when the backend omits one. */
export const EXPECTED_HEALTH_CHECKS = ["database", "redis", "s3"] as const;

const checkReport = contract<Schemas["CheckReport"]>()(
  z.object({ status: z.enum(["ok", "error"]), message: z.string(), duration_ms: z.number() }),
);

export const healthAnswer = contract<ApiAnswer<"/api/health", "get", 200>>()(
  z.object({
    // "degraded": the app serves requests but a dependency it can do without (Redis, S3) fails.
    status: z.enum(["healthy", "degraded", "unhealthy"]),
    timestamp: z.string(),
    git_sha: z.string(),
    failing: z.array(z.string()),
    checks: z.record(z.string(), checkReport),
  }),
);

export interface CheckResult {
  name: string;
  ok: boolean;
  /** Why a check failed, as the backend said; null for a passing check. */
  detail: string | null;
}

export interface HealthReport {
  healthy: boolean;
  status: string;
  timestamp: string;
  gitSha: string;
  checks: CheckResult[];
}

/** True when a non-2xx body is a health report (an unhealthy backend answers 503 with its checks). */
export function looksLikeHealthReport(body: unknown): boolean {
  return isRecord(body) && isRecord(body.checks);
}

export function readHealthReport(body: unknown): HealthReport {
  const report = decode(healthAnswer, body, "health answer");
  const names = [
    ...EXPECTED_HEALTH_CHECKS,
    ...Object.keys(report.checks).filter((name) => !(EXPECTED_HEALTH_CHECKS as readonly string[]).includes(name)),
  ];
  const checks = names.map((name): CheckResult => {
    const check = report.checks[name];
    if (check === undefined) {
      return { name, ok: false, detail: "not reported" };
    }
    return { name, ok: check.status === "ok", detail: check.status === "ok" ? null : check.message };
  });
  return {
    healthy: report.status === "healthy",
    status: report.status,
    timestamp: report.timestamp,
    gitSha: report.git_sha,
    checks,
  };
}

// ----- GET /api/ping, POST /api/ping/toggle ------------------------------------------------

export const pingAnswer = contract<ApiAnswer<"/api/ping", "get", 200>>()(
  z.object({ state: z.enum(["ping", "pong"]), toggle_count: z.number().int(), updated_at: z.string().nullable() }),
);

export interface PingState {
  state: string;
  toggleCount: number;
  updatedAt: string | null;
}

export function readPingState(body: unknown): PingState {
  const ping = decode(pingAnswer, body, "ping state");
  return { state: ping.state, toggleCount: ping.toggle_count, updatedAt: ping.updated_at };
}

// ----- GET /api/reconciliation/stats -------------------------------------------------------

export const statsAnswer = contract<ApiAnswer<"/api/reconciliation/stats", "get", 200>>()(
  z.object({
    matched: z.number().int(),
    unmatched_statement_lines: z.number().int(),
    unmatched_journal_entries: z.number().int(),
    match_rate: z.number().min(0).max(1),
  }),
);

export interface ReconciliationStats {
  matched: number;
  unmatchedStatementLines: number;
  unmatchedJournalEntries: number;
  /** Between 0 and 1. */
  matchRate: number;
}

export function readReconciliationStats(body: unknown): ReconciliationStats {
  const stats = decode(statsAnswer, body, "reconciliation stats");
  return {
    matched: stats.matched,
    unmatchedStatementLines: stats.unmatched_statement_lines,
    unmatchedJournalEntries: stats.unmatched_journal_entries,
    matchRate: stats.match_rate,
  };
}

// ----- GET /api/reconciliation/pending -----------------------------------------------------

/** Only the fields the page shows: a field the backend adds later is no reason to fail. */
type PendingLineAnswer = Pick<ApiAnswer<"/api/reconciliation/pending", "get", 200>[number], "id" | "date" | "description" | "amount">;

export const pendingAnswer = contract<PendingLineAnswer[]>()(
  z.array(z.object({ id: z.number().int(), date: z.string(), description: z.string(), amount: z.string() })),
);

export interface PendingLine {
  id: number;
  date: string;
  description: string;
  /** A decimal string: money never passes through a float on its way to the page. */
  amount: string;
}

export function readPendingLines(body: unknown): PendingLine[] {
  return decode(pendingAnswer, body, "pending lines");
}

// ----- POST /api/reconciliation/run, POST /api/statements ----------------------------------

export const matchingRunAnswer = contract<Pick<ApiAnswer<"/api/reconciliation/run", "post", 200>, "matched">>()(
  z.object({ matched: z.number().int() }),
);

export const statementUploadAnswer = contract<Pick<ApiAnswer<"/api/statements", "post", 201>, "line_count">>()(
  z.object({ line_count: z.number().int() }),
);

/** A sentence about what a matching run did. */
export function describeMatchingRun(body: unknown): string {
  const { matched } = decode(matchingRunAnswer, body, "matching result");
  return `Matching finished: ${matched} new ${matched === 1 ? "match" : "matches"}.`;
}

/** A sentence about an accepted statement upload. */
export function describeStatementUpload(body: unknown, fileName: string): string {
  const { line_count: count } = decode(statementUploadAnswer, body, "upload result");
  return `Imported ${count} ${count === 1 ? "line" : "lines"} from ${fileName}.`;
}

// ----- formats -----------------------------------------------------------------------------

const amountFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Formats a money amount (decimals arrive as strings to keep precision) with two decimals. */
export function formatAmount(amount: string): string {
  const value = Number(amount);
  return amount.trim() !== "" && Number.isFinite(value) ? amountFormat.format(value) : amount;
}

export function formatMatchRate(rate: number): string {
  return `${(rate * 100).toFixed(1)}%`;
}

/** Formats an ISO timestamp in the reader's locale and time zone; unparseable values as sent. */
export function formatTimestamp(value: string): string {
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? value : time.toLocaleString();
}
