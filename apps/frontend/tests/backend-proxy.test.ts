// @vitest-environment node
/**
 * The /api proxy against a real HTTP server on 127.0.0.1 standing in for the backend: what the
 * backend receives and what the browser gets back, including the backend-down and hung paths.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import { GET, HEAD, POST } from "@/app/api/[...path]/route";
import { DEFAULT_BACKEND_URL, proxyToBackend, readProxyOptions } from "@/lib/backend-proxy";

interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

type Handler = (request: ReceivedRequest, response: ServerResponse) => void;

let backend: Server;
let backendUrl: string;
let handler: Handler;
const received: ReceivedRequest[] = [];

beforeAll(async () => {
  backend = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const seen = {
        method: request.method ?? "",
        url: request.url ?? "",
        headers: request.headers,
        body: Buffer.concat(chunks),
      };
      received.push(seen);
      handler(seen, response);
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, "127.0.0.1", resolve));
  backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
});

afterEach(() => {
  received.length = 0;
});

afterAll(async () => {
  await new Promise<void>((resolve) => backend.close(() => resolve()));
});

function answerJson(status: number, body: unknown, headers: Record<string, string> = {}): Handler {
  return (_request, response) => {
    response.writeHead(status, { "content-type": "application/json", ...headers });
    response.end(JSON.stringify(body));
  };
}

function proxy(request: Request, timeoutMs = 5_000): Promise<Response> {
  return proxyToBackend(request, { backendUrl, timeoutMs });
}

/** A port nothing listens on: bound once by a throwaway server, then released. */
async function closedPortUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe("proxyToBackend", () => {
  it("forwards method, path with the /api prefix, query and headers, and returns status, headers and body", async () => {
    handler = answerJson(201, { state: "pong" }, { "x-request-id": "abc123" });

    const response = await proxy(
      new Request("http://frontend.test/api/ping?verbose=1&tag=a%20b", {
        headers: { authorization: "Bearer token-1", "x-custom": "kept", accept: "application/json" },
      }),
    );

    expect(response.status).toBe(201);
    expect(response.headers.get("x-request-id")).toBe("abc123");
    expect(await response.json()).toEqual({ state: "pong" });
    const [seen] = received;
    expect(seen.method).toBe("GET");
    expect(seen.url).toBe("/api/ping?verbose=1&tag=a%20b");
    expect(seen.headers.authorization).toBe("Bearer token-1");
    expect(seen.headers["x-custom"]).toBe("kept");
    expect(seen.headers.host).toBe(new URL(backendUrl).host);
  });

  it("forwards a multipart upload byte for byte with its boundary", async () => {
    handler = answerJson(201, { lines_imported: 2 });
    const form = new FormData();
    const csv = "date,description,amount\n2026-01-05,Coffee,-12.50\n2026-01-06,Salary,2500.00\n";
    form.append("file", new File([csv], "statement.csv", { type: "text/csv" }));
    const request = new Request("http://frontend.test/api/statements", { method: "POST", body: form });
    const contentType = request.headers.get("content-type") ?? "";
    const sentBytes = Buffer.from(await request.clone().arrayBuffer());

    const response = await proxy(request);

    expect(response.status).toBe(201);
    const [seen] = received;
    expect(seen.method).toBe("POST");
    expect(seen.headers["content-type"]).toBe(contentType);
    expect(contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(seen.body.equals(sentBytes)).toBe(true);
    expect(seen.body.toString()).toContain('name="file"; filename="statement.csv"');
    expect(seen.headers["content-length"]).toBe(String(sentBytes.length));
  });

  it("passes the backend's 422 error body through unchanged", async () => {
    const rejection = { detail: "line 3: amount 'abc' is not a number", code: "invalid_statement_line" };
    handler = answerJson(422, rejection);

    const response = await proxy(
      new Request("http://frontend.test/api/statements", { method: "POST", body: "garbage" }),
    );

    expect(response.status).toBe(422);
    expect(await response.json()).toEqual(rejection);
  });

  it("serves the backend's HTML docs page through the proxy", async () => {
    handler = (_request, response) => {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end("<!doctype html><title>API docs</title><script>url: '/api/openapi.json'</script>");
    };

    const response = await proxy(new Request("http://frontend.test/api/docs"));

    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await response.text()).toContain("/api/openapi.json");
    expect(received[0].url).toBe("/api/docs");
  });

  it("hands the browser a decoded body when the backend compressed it", async () => {
    handler = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
      response.end(gzipSync(JSON.stringify({ compressed: true })));
    };

    const response = await proxy(
      new Request("http://frontend.test/api/journal", { headers: { "accept-encoding": "gzip" } }),
    );

    expect(response.headers.get("content-encoding")).toBeNull();
    expect(await response.json()).toEqual({ compressed: true });
  });

  it("keeps every Set-Cookie header", async () => {
    handler = (_request, response) => {
      response.writeHead(200, [
        ["content-type", "application/json"],
        ["set-cookie", "a=1; Path=/"],
        ["set-cookie", "b=2; Path=/"],
      ]);
      response.end("{}");
    };

    const response = await proxy(new Request("http://frontend.test/api/health"));

    expect(response.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"]);
  });

  it("turns a redirect to the backend's own origin into a path the browser follows through the proxy", async () => {
    handler = (request, response) => {
      const location = request.url === "/api/journal" ? `${backendUrl}/api/journal/` : "https://example.org/x";
      response.writeHead(307, { location });
      response.end();
    };

    const local = await proxy(new Request("http://frontend.test/api/journal"));
    const external = await proxy(new Request("http://frontend.test/api/elsewhere"));

    expect(local.status).toBe(307);
    expect(local.headers.get("location")).toBe("/api/journal/");
    expect(external.headers.get("location")).toBe("https://example.org/x");
  });

  it("answers HEAD without a body", async () => {
    handler = answerJson(200, { status: "healthy" });

    const response = await proxy(new Request("http://frontend.test/api/health", { method: "HEAD" }));

    expect(response.status).toBe(200);
    expect(response.body).toBeNull();
    expect(received[0].method).toBe("HEAD");
  });

  it("answers a JSON 503 when nothing listens at the backend address", async () => {
    const downUrl = await closedPortUrl();

    const response = await proxyToBackend(new Request("http://frontend.test/api/health"), {
      backendUrl: downUrl,
      timeoutMs: 5_000,
    });

    expect(response.status).toBe(503);
    expect(response.headers.get("content-type")).toContain("application/json");
    const body = await response.json();
    expect(body.code).toBe("backend_unreachable");
    expect(body.detail).toContain(downUrl);
    expect(body.detail).toContain("connection refused");
  });

  it("answers a JSON 503 when the backend accepts the request but never answers", async () => {
    const held: ServerResponse[] = [];
    handler = (_request, response) => {
      held.push(response); // never answered: a hung backend
    };

    const response = await proxy(new Request("http://frontend.test/api/reconciliation/run", { method: "POST" }), 200);
    held.forEach((heldResponse) => heldResponse.destroy());

    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      detail: `The backend at ${backendUrl} did not answer within 200 ms.`,
      code: "backend_timeout",
    });
  });

  it("keeps a path prefix configured in the backend URL", async () => {
    handler = answerJson(200, []);

    await proxyToBackend(new Request("http://frontend.test/api/reconciliation/pending"), {
      backendUrl: `${backendUrl}/prefix/`,
      timeoutMs: 5_000,
    });

    expect(received[0].url).toBe("/prefix/api/reconciliation/pending");
  });

  it("explains a BACKEND_URL that is not an http(s) URL", async () => {
    const response = await proxyToBackend(new Request("http://frontend.test/api/health"), {
      backendUrl: "127.0.0.1:8000",
      timeoutMs: 5_000,
    });

    expect(response.status).toBe(500);
    const body = await response.json();
    expect(body.code).toBe("proxy_misconfigured");
    expect(body.detail).toContain('got "127.0.0.1:8000"');
  });
});

describe("readProxyOptions", () => {
  it("defaults to the local backend and reads BACKEND_URL when set", () => {
    expect(readProxyOptions({}).backendUrl).toBe(DEFAULT_BACKEND_URL);
    expect(readProxyOptions({ BACKEND_URL: " http://backend:8000 " }).backendUrl).toBe("http://backend:8000");
  });
});

describe("the app/api/[...path] route", () => {
  it("proxies every method to BACKEND_URL as read at request time", async () => {
    vi.stubEnv("BACKEND_URL", backendUrl);
    handler = answerJson(200, { ok: true });

    const get = await GET(new Request("http://frontend.test/api/reconciliation/stats"));
    const post = await POST(new Request("http://frontend.test/api/ping/toggle", { method: "POST" }));
    const head = await HEAD(new Request("http://frontend.test/api/health", { method: "HEAD" }));

    expect([get.status, post.status, head.status]).toEqual([200, 200, 200]);
    expect(received.map((seen) => `${seen.method} ${seen.url}`)).toEqual([
      "GET /api/reconciliation/stats",
      "POST /api/ping/toggle",
      "HEAD /api/health",
    ]);
  });

  it("answers 503 through the route when BACKEND_URL points at a closed port", async () => {
    vi.stubEnv("BACKEND_URL", await closedPortUrl());

    const response = await GET(new Request("http://frontend.test/api/health"));

    expect(response.status).toBe(503);
    expect((await response.json()).code).toBe("backend_unreachable");
  });
});
