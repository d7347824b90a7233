import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import { HealthDashboard } from "@/components/health-dashboard";

import { backendDown, deferredResponse, jsonResponse, stubBrowserFetch } from "./browser-fetch";
import { degradedAnswer, healthyAnswer as healthy, unhealthyAnswer, withRenamedField } from "./api-fixtures";
import { renderPage } from "./render-page";

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
    stubBrowserFetch({ "GET /api/health": jsonResponse(503, unhealthyAnswer) });

    renderPage(<HealthDashboard />);

    expect(await screen.findByTestId("health-status")).toHaveTextContent("unhealthy");
    expect(screen.getByTestId("check-database")).toHaveTextContent("failed");
    expect(screen.getByText("Connection refused")).toBeInTheDocument();
    expect(screen.getByTestId("check-redis")).toHaveTextContent("ok");
    expect(screen.getByTestId("check-s3")).toHaveTextContent("ok");
    expect(screen.queryByTestId("error-state")).not.toBeInTheDocument();
  });

  it("shows a degraded backend (200, Redis failing) as degraded, naming the failed check", async () => {
    stubBrowserFetch({ "GET /api/health": jsonResponse(200, degradedAnswer) });

    renderPage(<HealthDashboard />);

    expect(await screen.findByTestId("health-status")).toHaveTextContent("degraded");
    expect(screen.getByTestId("check-redis")).toHaveTextContent("failed");
    expect(screen.getByTestId("check-database")).toHaveTextContent("ok");
    expect(screen.queryByTestId("error-state")).not.toBeInTheDocument();
  });

  it("lists a check the backend left out as failed rather than hiding it", async () => {
    const withoutS3 = Object.fromEntries(Object.entries(healthy.checks).filter(([name]) => name !== "s3"));
    stubBrowserFetch({ "GET /api/health": jsonResponse(200, { ...healthy, checks: withoutS3 }) });

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

  it("shows a renamed field as an error naming it, never as a half-empty report", async () => {
    stubBrowserFetch({ "GET /api/health": jsonResponse(200, withRenamedField(healthy, "git_sha", "commit")) });

    renderPage(<HealthDashboard />);

    const errorState = await screen.findByTestId("error-state");
    expect(errorState).toHaveTextContent("does not match the API this page was built for (git_sha:");
    expect(screen.queryByTestId("health-status")).not.toBeInTheDocument();
    expect(document.body).not.toHaveTextContent("—");
  });
});
