/**
 * A stand-in for the browser's fetch in component tests: the network boundary of a page, where
 * the real backend cannot be. Each route answers with a canned Response or a promise the test
 * settles itself (to observe the loading state); an unexpected request fails the test.
 */
import { vi } from "vitest";

export type RouteAnswer = Response | Promise<Response> | (() => Response | Promise<Response>);

export interface RecordedRequest {
  method: string;
  url: string;
  body: BodyInit | null | undefined;
}

export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** The proxy's answer when the backend is down, as lib/backend-proxy.ts sends it. */
export function backendDown(): Response {
  return jsonResponse(503, {
    detail: "The backend at http://127.0.0.1:8000 is unreachable (connection refused); is it running?",
    code: "backend_unreachable",
  });
}

/** A response the test releases later, for asserting what shows while a request is in flight. */
export function deferredResponse(): { promise: Promise<Response>; resolve: (response: Response) => void } {
  let resolve: (response: Response) => void = () => undefined;
  const promise = new Promise<Response>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

/**
 * Replaces global fetch with one that answers `"METHOD /path"` keys from `routes`. A route may be
 * reassigned during a test (the backend "comes back" before a retry). Returns the routes object
 * and the list of requests made.
 */
export function stubBrowserFetch(routes: Record<string, RouteAnswer>): {
  routes: Record<string, RouteAnswer>;
  requests: RecordedRequest[];
} {
  const requests: RecordedRequest[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      const method = (init.method ?? "GET").toUpperCase();
      requests.push({ method, url, body: init.body });
      const answer = routes[`${method} ${url}`];
      if (answer === undefined) {
        throw new Error(`unexpected request in test: ${method} ${url}`);
      }
      const response = await (typeof answer === "function" ? answer() : answer);
      // A Response body can be read once; hand out a copy so a route can answer repeatedly.
      return response.clone();
    }),
  );
  return { routes, requests };
}
