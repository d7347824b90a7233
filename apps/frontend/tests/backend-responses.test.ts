// @vitest-environment node
import { describe, expect, it } from "vitest";

import {
  describeMatchingRun,
  describeStatementUpload,
  formatAmount,
  formatMatchRate,
  readCheck,
  readHealthReport,
  readPendingLines,
  readPingState,
  readReconciliationStats,
} from "@/lib/backend-responses";

describe("readCheck", () => {
  it.each([
    [true, true],
    [false, false],
    ["ok", true],
    ["OK", true],
    ["healthy", true],
    ["failed", false],
    [{ status: "ok" }, true],
    [{ status: "failed", error: "timeout" }, false],
    [{ ok: true, latency_ms: 3 }, true],
    [{ ok: false }, false],
    [{ healthy: true }, true],
    [{}, false],
    [null, false],
    [42, false],
  ])("reads %j as ok=%s", (value, ok) => {
    expect(readCheck(value).ok).toBe(ok);
  });

  it("keeps the reason a check failed", () => {
    expect(readCheck({ status: "failed", error: "Connection refused" }).detail).toBe("Connection refused");
    expect(readCheck("error: connection refused")).toEqual({ ok: false, detail: "error: connection refused" });
    expect(readCheck("failed").detail).toBeNull();
  });
});

describe("readHealthReport", () => {
  it("lists the expected checks first, then any others the backend added", () => {
    const report = readHealthReport({ status: "healthy", checks: { queue: "ok", s3: "ok", database: "ok", redis: "ok" } });

    expect(report.checks.map((check) => check.name)).toEqual(["database", "redis", "s3", "queue"]);
    expect(report.healthy).toBe(true);
  });

  it("derives the status from the checks when the backend sends none", () => {
    expect(readHealthReport({ checks: { database: "ok", redis: "failed", s3: "ok" } }).status).toBe("unhealthy");
  });

  it("rejects an answer without checks", () => {
    expect(() => readHealthReport({ detail: "boom" })).toThrow("no checks");
  });
});

describe("readPingState", () => {
  it("reads the backend's field names", () => {
    expect(readPingState({ state: "pong", toggle_count: 3, updated_at: "2026-01-01T00:00:00Z" })).toEqual({
      state: "pong",
      toggleCount: 3,
      updatedAt: "2026-01-01T00:00:00Z",
    });
  });
});

describe("readReconciliationStats", () => {
  it("accepts a percentage or a fraction for the match rate", () => {
    expect(readReconciliationStats({ match_rate: 0.25 }).matchRate).toBe(0.25);
    expect(readReconciliationStats({ match_rate: 25 }).matchRate).toBe(0.25);
  });

  it("computes the match rate when the backend leaves it out", () => {
    expect(readReconciliationStats({ matched: 3, unmatched_statement_lines: 1 }).matchRate).toBe(0.75);
    expect(readReconciliationStats({ matched: 0, unmatched_statement_lines: 0 }).matchRate).toBeNull();
  });
});

describe("readPendingLines", () => {
  it("accepts a bare list or a wrapped one and alternative field names", () => {
    const line = { id: "l1", transaction_date: "2026-01-05", memo: "Coffee", amount: -12.5 };

    expect(readPendingLines([line])).toEqual([{ id: "l1", date: "2026-01-05", description: "Coffee", amount: "-12.5" }]);
    expect(readPendingLines({ lines: [line] })).toHaveLength(1);
  });

  it("rejects something that is not a list", () => {
    expect(() => readPendingLines({ count: 3 })).toThrow("not a list");
  });
});

describe("sentences and formats", () => {
  it("describes a matching run and an upload from whatever count is there", () => {
    expect(describeMatchingRun({ matched: 1 })).toBe("Matching finished: 1 new match.");
    expect(describeMatchingRun({})).toBe("Matching finished.");
    expect(describeStatementUpload({ lines: [{}, {}, {}] }, "a.csv")).toBe("Imported 3 lines from a.csv.");
    expect(describeStatementUpload(undefined, "a.csv")).toBe("Uploaded a.csv.");
  });

  it("formats amounts with two decimals and leaves non-numbers alone", () => {
    expect(formatAmount("1234.5")).toBe("1,234.50");
    expect(formatAmount("n/a")).toBe("n/a");
    expect(formatAmount("")).toBe("");
    expect(formatMatchRate(0.875)).toBe("87.5%");
    expect(formatMatchRate(null)).toBe("—");
  });
});
