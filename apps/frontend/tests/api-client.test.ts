import { describe, expect, it } from "vitest";

import { ApiError, requestJson } from "@/lib/api-client";

import { jsonResponse, stubBrowserFetch } from "./browser-fetch";

describe("requestJson", () => {
  it("uses the backend's detail and code as the error", async () => {
    stubBrowserFetch({ "GET /api/x": jsonResponse(409, { detail: "already imported", code: "duplicate_statement" }) });

    const error = await requestJson("/api/x").catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ message: "already imported", status: 409, code: "duplicate_statement" });
  });

  it("falls back to the HTTP status for a body that is not JSON", async () => {
    stubBrowserFetch({
      "GET /api/x": new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway" }),
    });

    await expect(requestJson("/api/x")).rejects.toThrow("The server answered 502 Bad Gateway.");
  });

  it("reports a request that never got an answer", async () => {
    stubBrowserFetch({
      "GET /api/x": () => {
        throw new TypeError("Failed to fetch");
      },
    });

    await expect(requestJson("/api/x")).rejects.toMatchObject({
      message: "Could not reach the server (Failed to fetch).",
      status: 0,
    });
  });

  it("keeps an error body the caller accepts as an answer", async () => {
    stubBrowserFetch({ "GET /api/health": jsonResponse(503, { status: "unhealthy", checks: {} }) });

    await expect(requestJson("/api/health", {}, () => true)).resolves.toEqual({ status: "unhealthy", checks: {} });
  });
});
