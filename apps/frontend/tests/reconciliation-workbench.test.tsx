import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import { ReconciliationWorkbench } from "@/components/reconciliation-workbench";

import { backendDown, deferredResponse, jsonResponse, stubBrowserFetch } from "./browser-fetch";
import {
  matchingRunAnswer,
  pendingAnswer as pendingLines,
  statementUploadAnswer,
  statsAnswer as stats,
  withRenamedField,
} from "./api-fixtures";
import { renderPage } from "./render-page";

function csvFile(text: string, name = "statement.csv"): File {
  return new File([text], name, { type: "text/csv" });
}

describe("reconciliation workbench", () => {
  it("shows a loading state until stats and pending lines arrive", async () => {
    const pendingStats = deferredResponse();
    stubBrowserFetch({
      "GET /api/reconciliation/stats": pendingStats.promise,
      "GET /api/reconciliation/pending": jsonResponse(200, pendingLines),
    });

    renderPage(<ReconciliationWorkbench />);

    expect(screen.getByTestId("loading")).toBeInTheDocument();
    pendingStats.resolve(jsonResponse(200, stats));
    expect(await screen.findByTestId("stats-matched")).toHaveTextContent("12");
  });

  it("shows the stats and the pending lines", async () => {
    stubBrowserFetch({
      "GET /api/reconciliation/stats": jsonResponse(200, stats),
      "GET /api/reconciliation/pending": jsonResponse(200, pendingLines),
    });

    renderPage(<ReconciliationWorkbench />);

    expect(await screen.findByTestId("stats-matched")).toHaveTextContent("12");
    expect(screen.getByTestId("stats-unmatched-lines")).toHaveTextContent("3");
    expect(screen.getByTestId("stats-unmatched-entries")).toHaveTextContent("2");
    expect(screen.getByTestId("stats-match-rate")).toHaveTextContent("80.0%");
    const list = screen.getByTestId("pending-list");
    expect(list).toHaveTextContent("Coffee Roasters");
    expect(list).toHaveTextContent("-12.50");
    expect(list).toHaveTextContent("2,500.00");
  });

  it("shows a renamed stats field as an error naming it, never as —", async () => {
    stubBrowserFetch({
      "GET /api/reconciliation/stats": jsonResponse(200, withRenamedField(stats, "matched", "matched_count")),
      "GET /api/reconciliation/pending": jsonResponse(200, pendingLines),
    });

    renderPage(<ReconciliationWorkbench />);

    expect(await screen.findByTestId("error-state")).toHaveTextContent(
      "reconciliation stats does not match the API this page was built for (matched:",
    );
    expect(screen.queryByTestId("stats-matched")).not.toBeInTheDocument();
    expect(document.body).not.toHaveTextContent("—");
  });

  it("says nothing is pending for an empty list", async () => {
    stubBrowserFetch({
      "GET /api/reconciliation/stats": jsonResponse(200, stats),
      "GET /api/reconciliation/pending": jsonResponse(200, []),
    });

    renderPage(<ReconciliationWorkbench />);

    const list = await screen.findByTestId("pending-list");
    // Its own element (not a line's first grid column): the browser journey checks it spans the list.
    expect(within(list).getByTestId("pending-empty")).toHaveTextContent(
      "Nothing pending: every imported line is matched.",
    );
  });

  it("reports an upload answer it cannot read as a failed upload, not a success", async () => {
    stubBrowserFetch({
      "GET /api/reconciliation/stats": jsonResponse(200, stats),
      "GET /api/reconciliation/pending": jsonResponse(200, pendingLines),
      "POST /api/statements": jsonResponse(
        201,
        withRenamedField(statementUploadAnswer, "line_count", "lines_imported"),
      ),
    });
    renderPage(<ReconciliationWorkbench />);

    await userEvent.upload(await screen.findByTestId("upload-input"), csvFile("date,description,amount\n"));

    expect(await screen.findByTestId("upload-error")).toHaveTextContent("(line_count:");
    expect(screen.queryByTestId("upload-result")).not.toBeInTheDocument();
  });

  it("runs matching, reports the outcome and reloads stats and pending lines", async () => {
    const fetchStub = stubBrowserFetch({
      "GET /api/reconciliation/stats": jsonResponse(200, stats),
      "GET /api/reconciliation/pending": jsonResponse(200, pendingLines),
      "POST /api/reconciliation/run": jsonResponse(200, matchingRunAnswer),
    });
    renderPage(<ReconciliationWorkbench />);
    await screen.findByTestId("stats-matched");

    fetchStub.routes["GET /api/reconciliation/stats"] = jsonResponse(200, { ...stats, matched: 14 });
    fetchStub.routes["GET /api/reconciliation/pending"] = jsonResponse(200, pendingLines.slice(1));
    await userEvent.click(screen.getByTestId("run-matching"));

    expect(await screen.findByTestId("run-result")).toHaveTextContent("2 new matches");
    await waitFor(() => expect(screen.getByTestId("stats-matched")).toHaveTextContent("14"));
    expect(screen.getByTestId("pending-list")).not.toHaveTextContent("Coffee Roasters");
  });

  it("uploads the chosen CSV as multipart field 'file' and reports what was imported", async () => {
    const fetchStub = stubBrowserFetch({
      "GET /api/reconciliation/stats": jsonResponse(200, stats),
      "GET /api/reconciliation/pending": jsonResponse(200, pendingLines),
      "POST /api/statements": jsonResponse(201, statementUploadAnswer),
    });
    renderPage(<ReconciliationWorkbench />);

    await userEvent.upload(await screen.findByTestId("upload-input"), csvFile("date,description,amount\n"));

    expect(await screen.findByTestId("upload-result")).toHaveTextContent("Imported 2 lines from statement.csv");
    const upload = fetchStub.requests.find((request) => request.method === "POST");
    expect(upload?.body).toBeInstanceOf(FormData);
    const sent = (upload?.body as FormData).get("file");
    expect(sent).toBeInstanceOf(File);
    expect((sent as File).name).toBe("statement.csv");
  });

  it("shows the backend's line-level error for a bad file", async () => {
    stubBrowserFetch({
      "GET /api/reconciliation/stats": jsonResponse(200, stats),
      "GET /api/reconciliation/pending": jsonResponse(200, pendingLines),
      "POST /api/statements": jsonResponse(422, {
        detail: "line 3: amount 'abc' is not a number",
        code: "invalid_statement_line",
      }),
    });
    renderPage(<ReconciliationWorkbench />);

    await userEvent.upload(await screen.findByTestId("upload-input"), csvFile("garbage"));

    const error = await screen.findByTestId("upload-error");
    expect(error).toHaveTextContent("line 3: amount 'abc' is not a number");
    expect(error).toHaveAttribute("data-code", "invalid_statement_line");
    expect(screen.queryByTestId("upload-result")).not.toBeInTheDocument();
  });

  it("shows FastAPI's validation error list readably", async () => {
    stubBrowserFetch({
      "GET /api/reconciliation/stats": jsonResponse(200, stats),
      "GET /api/reconciliation/pending": jsonResponse(200, pendingLines),
      "POST /api/statements": jsonResponse(422, {
        detail: [{ loc: ["body", "file"], msg: "Field required", type: "missing" }],
      }),
    });
    renderPage(<ReconciliationWorkbench />);

    await userEvent.upload(await screen.findByTestId("upload-input"), csvFile("x"));

    expect(await screen.findByTestId("upload-error")).toHaveTextContent("body.file: Field required");
  });

  it("shows an error with Retry when the backend is down, and recovers", async () => {
    const fetchStub = stubBrowserFetch({
      "GET /api/reconciliation/stats": backendDown(),
      "GET /api/reconciliation/pending": backendDown(),
    });

    renderPage(<ReconciliationWorkbench />);

    expect(await screen.findByTestId("error-state")).toHaveTextContent("unreachable");
    expect(screen.queryByTestId("run-matching")).not.toBeInTheDocument();

    fetchStub.routes["GET /api/reconciliation/stats"] = jsonResponse(200, stats);
    fetchStub.routes["GET /api/reconciliation/pending"] = jsonResponse(200, pendingLines);
    await userEvent.click(screen.getByTestId("retry-button"));

    expect(await screen.findByTestId("stats-matched")).toHaveTextContent("12");
    expect(screen.queryByTestId("error-state")).not.toBeInTheDocument();
  });
});
