import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import { HealthDashboard } from "@/components/health-dashboard";

import { backendDown, deferredResponse, jsonResponse, stubBrowserFetch } from "./browser-fetch";
import { renderPage } from "./render-page";

const healthy = {
  status: "healthy",
  timestamp: "2026-01-02T03:04:05Z",
  git_sha: "0123456789abcdef0123",
  checks: { database: { status: "ok" }, redis: { status: "ok" }, s3: { status: "ok" } },
};

describe("dashboard", () => {
  it("shows a loading state until the health answer arrives", async () => {
    const pending = deferredResponse();
    stubBrowserFetch({ "GET /api/health": pending.promise });

    renderPage(<HealthDashboard />);

    expect(screen.getByTestId("loading")).toBeInTheDocument();
    pending.resolve(jsonResponse(200, healthy));
    expect(await screen.findByTestId("health-status")).toHaveTextContent("healthy");
    expect(screen.queryByTestId("loading")).not.toBeInTheDocument();
  });

  it("shows every check as ok for a healthy backend, with the build", async () => {
    stubBrowserFetch({ "GET /api/health": jsonResponse(200, healthy) });

    renderPage(<HealthDashboard />);

    expect(await screen.findByTestId("health-status")).toHaveTextContent("healthy");
    expect(screen.getByTestId("check-database")).toHaveTextContent("ok");
    expect(screen.getByTestId("check-redis")).toHaveTextContent("ok");
    expect(screen.getByTestId("check-s3")).toHaveTextContent("ok");
    expect(screen.getByText(/build 0123456789ab/)).toBeInTheDocument();
    expect(screen.getByRole("link", { name: /Ping-pong/ })).toHaveAttribute("href", "/ping-pong");
    expect(screen.getByRole("link", { name: /Reconciliation/ })).toHaveAttribute("href", "/reconciliation");
    expect(screen.getByRole("link", { name: /API docs/ })).toHaveAttribute("href", "/api/docs");
  });

  it("shows an unhealthy backend's 503 report, naming the failed check and why", async () => {
    stubBrowserFetch({
      "GET /api/health": jsonResponse(503, {
        status: "unhealthy",
        timestamp: "2026-01-02T03:04:05Z",
        git_sha: "abc",
        checks: { database: { status: "ok" }, redis: { status: "failed", error: "Connection refused" }, s3: true },
      }),
    });

    renderPage(<HealthDashboard />);

    expect(await screen.findByTestId("health-status")).toHaveTextContent("unhealthy");
    expect(screen.getByTestId("check-database")).toHaveTextContent("ok");
    expect(screen.getByTestId("check-redis")).toHaveTextContent("failed");
    expect(screen.getByText("Connection refused")).toBeInTheDocument();
    expect(screen.getByTestId("check-s3")).toHaveTextContent("ok");
    expect(screen.queryByTestId("error-state")).not.toBeInTheDocument();
  });

  it("lists a check the backend left out as failed rather than hiding it", async () => {
    stubBrowserFetch({
      "GET /api/health": jsonResponse(200, { status: "healthy", checks: { database: "ok", redis: "ok" } }),
    });

    renderPage(<HealthDashboard />);

    expect(await screen.findByTestId("check-s3")).toHaveTextContent("failed");
    expect(screen.getByText("not reported")).toBeInTheDocument();
  });

  it("shows the proxy's error when the backend is down, and recovers on Retry", async () => {
    const fetchStub = stubBrowserFetch({ "GET /api/health": backendDown() });

    renderPage(<HealthDashboard />);

    const errorState = await screen.findByTestId("error-state");
    expect(errorState).toHaveTextContent("unreachable (connection refused)");
    expect(screen.queryByTestId("health-status")).not.toBeInTheDocument();

    fetchStub.routes["GET /api/health"] = jsonResponse(200, healthy);
    await userEvent.click(screen.getByTestId("retry-button"));

    expect(await screen.findByTestId("health-status")).toHaveTextContent("healthy");
    expect(screen.queryByTestId("error-state")).not.toBeInTheDocument();
  });
});
