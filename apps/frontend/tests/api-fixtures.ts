/**
 * Answers exactly as the backend sends them: each fixture is typed with the type generated from
 * the backend's OpenAPI document (lib/api-types.ts), so when the backend changes a shape and the
 * types are regenerated, a stale fixture fails the type check instead of testing a shape that no
 * longer exists.
 */
import type { components } from "@/lib/api-types";
import type { ApiAnswer } from "@/lib/backend-responses";

type Schemas = components["schemas"];

function check(status: "ok" | "error", message: string): Schemas["CheckReport"] {
  return { status, message, duration_ms: 1.5 };
}

export const healthyAnswer = {
  status: "healthy",
  timestamp: "2026-01-02T03:04:05Z",
  git_sha: "0123456789abcdef0123",
  failing: [],
  checks: { database: check("ok", "ok"), redis: check("ok", "ok"), s3: check("ok", "ok") },
} satisfies ApiAnswer<"/api/health", "get", 200>;

/** What GET /api/health answers with status 200 when Redis fails but the app still serves. */
export const degradedAnswer = {
  ...healthyAnswer,
  status: "degraded",
  failing: ["redis"],
  checks: { ...healthyAnswer.checks, redis: check("error", "Connection refused") },
} satisfies ApiAnswer<"/api/health", "get", 200>;

/** What GET /api/health answers with status 503. */
export const unhealthyAnswer = {
  ...healthyAnswer,
  status: "unhealthy",
  failing: ["database"],
  checks: { ...healthyAnswer.checks, database: check("error", "Connection refused") },
} satisfies ApiAnswer<"/api/health", "get", 503>;

export const pingAnswer = {
  state: "ping",
  toggle_count: 4,
  updated_at: "2026-01-02T03:04:05Z",
} satisfies ApiAnswer<"/api/ping", "get", 200>;

export const pongAnswer = {
  state: "pong",
  toggle_count: 5,
  updated_at: "2026-01-02T03:05:00Z",
} satisfies ApiAnswer<"/api/ping/toggle", "post", 200>;

export const statsAnswer = {
  matched: 12,
  unmatched_statement_lines: 3,
  unmatched_journal_entries: 2,
  match_rate: 0.8,
} satisfies ApiAnswer<"/api/reconciliation/stats", "get", 200>;

export const pendingAnswer = [
  { id: 1, line_number: 2, date: "2026-01-05", description: "Coffee Roasters", amount: "-12.50", currency: "EUR" },
  { id: 2, line_number: 3, date: "2026-01-06", description: "Salary", amount: "2500.00", currency: "EUR" },
] satisfies ApiAnswer<"/api/reconciliation/pending", "get", 200>;

export const matchingRunAnswer = {
  matched: 2,
  matches: [
    { statement_line_id: 1, journal_entry_id: 7, day_difference: 0 },
    { statement_line_id: 2, journal_entry_id: 8, day_difference: 1 },
  ],
} satisfies ApiAnswer<"/api/reconciliation/run", "post", 200>;

export const statementUploadAnswer = {
  id: 1,
  filename: "statement.csv",
  object_key: "statements/0b6f2c1e.csv",
  size_bytes: 84,
  sha256: "5f2b4e0c9a1d7e3b6c8a2f4d1e9b7c5a3f1d8e6b4c2a0f9e7d5c3b1a9f8e7d6c",
  line_count: 2,
  uploaded_at: "2026-01-07T08:00:00Z",
} satisfies ApiAnswer<"/api/statements", "post", 201>;

/** A copy of `answer` with `field` renamed to `renamedTo`: what a backend rename looks like on the wire. */
export function withRenamedField(answer: object, field: string, renamedTo: string): Record<string, unknown> {
  const { [field]: value, ...rest } = answer as Record<string, unknown>;
  return { ...rest, [renamedTo]: value };
}
