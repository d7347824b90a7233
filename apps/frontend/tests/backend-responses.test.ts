// @vitest-environment node
import { describe, expect, it } from "vitest";

import {
  ContractError,
  describeMatchingRun,
  describeStatementUpload,
  formatAmount,
  formatMatchRate,
  readHealthReport,
  readPendingLines,
  readPingState,
  readReconciliationStats,
} from "@/lib/backend-responses";

import {
  healthyAnswer,
  matchingRunAnswer,
  pendingAnswer,
  pingAnswer,
  statementUploadAnswer,
  statsAnswer,
  degradedAnswer,
  withRenamedField,
} from "./api-fixtures";

describe("readHealthReport", () => {
  it("reads a healthy report", () => {
    const report = readHealthReport(healthyAnswer);

    expect(report).toMatchObject({ healthy: true, status: "healthy", gitSha: "0123456789abcdef0123" });
    expect(report.checks).toEqual([
      { name: "database", ok: true, detail: null },
      { name: "redis", ok: true, detail: null },
      { name: "s3", ok: true, detail: null },
    ]);
  });

  it("keeps the reason a check failed", () => {
    const report = readHealthReport(degradedAnswer);

    expect(report.healthy).toBe(false);
    expect(report.status).toBe("degraded");
    expect(report.checks.find((check) => check.name === "redis")).toEqual({
      name: "redis",
      ok: false,
      detail: "Connection refused",
    });
  });

  it("lists the expected checks first, then any others, and a missing one as failed", () => {
    const withoutS3 = Object.fromEntries(Object.entries(healthyAnswer.checks).filter(([name]) => name !== "s3"));
    const report = readHealthReport({ ...healthyAnswer, checks: { queue: healthyAnswer.checks.redis, ...withoutS3 } });

    expect(report.checks.map((check) => check.name)).toEqual(["database", "redis", "s3", "queue"]);
    expect(report.checks[2]).toEqual({ name: "s3", ok: false, detail: "not reported" });
  });
});

describe("every decoder reads what the backend sends", () => {
  it("reads the ping state, stats, pending lines and action answers", () => {
    expect(readPingState(pingAnswer)).toEqual({ state: "ping", toggleCount: 4, updatedAt: "2026-01-02T03:04:05Z" });
    expect(readPingState({ ...pingAnswer, updated_at: null }).updatedAt).toBeNull();
    expect(readReconciliationStats(statsAnswer)).toEqual({
      matched: 12,
      unmatchedStatementLines: 3,
      unmatchedJournalEntries: 2,
      matchRate: 0.8,
    });
    expect(readPendingLines(pendingAnswer)).toEqual([
      { id: 1, date: "2026-01-05", description: "Coffee Roasters", amount: "-12.50" },
      { id: 2, date: "2026-01-06", description: "Salary", amount: "2500.00" },
    ]);
    expect(describeMatchingRun(matchingRunAnswer)).toBe("Matching finished: 2 new matches.");
    expect(describeMatchingRun({ matched: 1, matches: [] })).toBe("Matching finished: 1 new match.");
    expect(describeStatementUpload(statementUploadAnswer, "a.csv")).toBe("Imported 2 lines from a.csv.");
  });
});

describe("a field the backend renamed or dropped", () => {
  it.each([
    ["health", () => readHealthReport(withRenamedField(healthyAnswer, "git_sha", "commit")), "git_sha"],
    ["ping", () => readPingState(withRenamedField(pingAnswer, "toggle_count", "toggles")), "toggle_count"],
    ["stats", () => readReconciliationStats(withRenamedField(statsAnswer, "matched", "matched_count")), "matched"],
    [
      "pending",
      () => readPendingLines([withRenamedField(pendingAnswer[0], "description", "memo")]),
      "0.description",
    ],
    ["matching", () => describeMatchingRun(withRenamedField(matchingRunAnswer, "matched", "created")), "matched"],
    [
      "upload",
      () => describeStatementUpload(withRenamedField(statementUploadAnswer, "line_count", "lines_imported"), "a.csv"),
      "line_count",
    ],
  ])("fails the %s decoder with a ContractError naming the field", (_what, read, field) => {
    expect(read).toThrow(ContractError);
    expect(read).toThrow(new RegExp(`\\(${field.replace(".", "\\.")}: `));
  });

  it("explains the mismatch in one sentence with the one thing to do", () => {
    const error = (() => {
      try {
        readPingState(withRenamedField(pingAnswer, "toggle_count", "toggles"));
      } catch (caught) {
        return caught;
      }
    })();

    expect(error).toBeInstanceOf(ContractError);
    expect(error).toMatchObject({ code: "contract_mismatch" });
    expect((error as Error).message).toMatch(
      /^The backend's ping state does not match the API this page was built for \(toggle_count: .+\)\. Deploy the frontend and backend from the same commit\.$/,
    );
  });

  it("rejects a wrong type or a value outside the documented range, not only a missing field", () => {
    expect(() => readPendingLines([{ ...pendingAnswer[0], amount: -12.5 }])).toThrow(ContractError);
    expect(() => readReconciliationStats({ ...statsAnswer, match_rate: 80 })).toThrow(ContractError);
    expect(() => readHealthReport({ ...healthyAnswer, status: "ok" })).toThrow(ContractError);
    expect(() => readPendingLines({ items: pendingAnswer })).toThrow(ContractError);
  });
});

describe("formats", () => {
  it("formats amounts with two decimals and leaves non-numbers alone", () => {
    expect(formatAmount("1234.5")).toBe("1,234.50");
    expect(formatAmount("n/a")).toBe("n/a");
    expect(formatAmount("")).toBe("");
    expect(formatMatchRate(0.875)).toBe("87.5%");
  });
});
