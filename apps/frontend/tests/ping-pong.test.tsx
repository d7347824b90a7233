import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import { PingPong } from "@/components/ping-pong";

import { backendDown, deferredResponse, jsonResponse, stubBrowserFetch } from "./browser-fetch";
import { pingAnswer as ping, pongAnswer as pong, withRenamedField } from "./api-fixtures";
import { renderPage } from "./render-page";

describe("ping-pong", () => {
  it("shows a loading state until the state arrives", async () => {
    const pending = deferredResponse();
    stubBrowserFetch({ "GET /api/ping": pending.promise });

    renderPage(<PingPong />);

    expect(screen.getByTestId("loading")).toBeInTheDocument();
    expect(screen.queryByTestId("toggle-button")).not.toBeInTheDocument();
    pending.resolve(jsonResponse(200, ping));
    expect(await screen.findByTestId("ping-state")).toHaveTextContent("PING");
  });

  it("shows the state, toggle count and when it was last toggled", async () => {
    stubBrowserFetch({ "GET /api/ping": jsonResponse(200, ping) });

    renderPage(<PingPong />);

    expect(await screen.findByTestId("ping-state")).toHaveTextContent("PING");
    expect(screen.getByTestId("toggle-count")).toHaveTextContent("4");
    expect(screen.getByTestId("last-toggled").querySelector("time")).toHaveAttribute(
      "datetime",
      "2026-01-02T03:04:05Z",
    );
  });

  it("says 'never' for a state that was never toggled", async () => {
    stubBrowserFetch({ "GET /api/ping": jsonResponse(200, { ...ping, toggle_count: 0, updated_at: null }) });

    renderPage(<PingPong />);

    expect(await screen.findByTestId("last-toggled")).toHaveTextContent("never");
  });

  it("posts a toggle and shows the state the backend answers with", async () => {
    const fetchStub = stubBrowserFetch({
      "GET /api/ping": jsonResponse(200, ping),
      "POST /api/ping/toggle": jsonResponse(200, pong),
    });
    renderPage(<PingPong />);

    await userEvent.click(await screen.findByTestId("toggle-button"));

    expect(await screen.findByText("PONG")).toBeInTheDocument();
    expect(screen.getByTestId("toggle-count")).toHaveTextContent("5");
    expect(fetchStub.requests.filter((request) => request.method === "POST")).toHaveLength(1);
  });

  it("keeps the current state and says why when a toggle fails", async () => {
    stubBrowserFetch({
      "GET /api/ping": jsonResponse(200, ping),
      "POST /api/ping/toggle": backendDown(),
    });
    renderPage(<PingPong />);

    await userEvent.click(await screen.findByTestId("toggle-button"));

    expect(await screen.findByTestId("toggle-error")).toHaveTextContent("unreachable");
    expect(screen.getByTestId("ping-state")).toHaveTextContent("PING");
    expect(screen.getByTestId("toggle-button")).toBeEnabled();
  });

  it("shows an error with Retry when the backend is down, and recovers", async () => {
    const fetchStub = stubBrowserFetch({ "GET /api/ping": backendDown() });

    renderPage(<PingPong />);

    expect(await screen.findByTestId("error-state")).toHaveTextContent("unreachable");
    expect(screen.queryByTestId("toggle-button")).not.toBeInTheDocument();

    fetchStub.routes["GET /api/ping"] = jsonResponse(200, pong);
    await userEvent.click(screen.getByTestId("retry-button"));

    expect(await screen.findByTestId("ping-state")).toHaveTextContent("PONG");
    expect(screen.queryByTestId("error-state")).not.toBeInTheDocument();
  });

  it("treats an answer without a state as an error, not a blank page", async () => {
    stubBrowserFetch({ "GET /api/ping": jsonResponse(200, { hello: "world" }) });

    renderPage(<PingPong />);

    expect(await screen.findByTestId("error-state")).toHaveTextContent("ping state does not match");
  });

  it("shows a renamed toggle count as an error naming it, not as a count of 0", async () => {
    stubBrowserFetch({ "GET /api/ping": jsonResponse(200, withRenamedField(ping, "toggle_count", "toggles")) });

    renderPage(<PingPong />);

    expect(await screen.findByTestId("error-state")).toHaveTextContent("(toggle_count:");
    expect(screen.queryByTestId("toggle-count")).not.toBeInTheDocument();
  });
});
