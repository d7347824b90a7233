/**
 * Forwards the browser's `/api/*` requests to the FastAPI backend, keeping the `/api` prefix.
 *
 * Why a route handler and not a `rewrites()` entry: a rewrite to a backend that is down answers
 * with Next's HTML error page after the connect attempt gives up, while the pages and the smoke
 * tests need a quick JSON 503 in the backend's own error shape (`{detail, code}`) that they can
 * show. The handler stays a thin pipe: method, headers, query, body and the response status,
 * headers and body pass through untouched apart from the hop-by-hop headers HTTP forbids a
 * proxy to forward.
 */

/** Where the backend listens when BACKEND_URL is unset: the port `nox -s dev` starts it on. */
export const DEFAULT_BACKEND_URL = "http://127.0.0.1:8000";

/**
 * How long to wait for the backend's response headers. Longer than the slowest endpoint
 * (statement import, matching run) takes on realistic data, short enough that a hung backend
 * shows as an error instead of a spinner. Streaming the body afterwards is not limited.
 */
export const DEFAULT_BACKEND_TIMEOUT_MS = 15_000;

export interface ProxyOptions {
  /** Backend origin, optionally with a path prefix; the incoming `/api/...` path is appended. */
  backendUrl: string;
  timeoutMs: number;
}

/** The backend's error shape, reused so the pages render proxy failures like backend ones. */
export interface ProxyErrorBody {
  detail: string;
  code: "backend_unreachable" | "backend_timeout" | "proxy_misconfigured";
}

// RFC 9110 §7.6.1 connection-specific headers, plus `host` (the backend's, not ours) and
// `content-length` (recomputed for the buffered body). undici also refuses some of these outright.
const REQUEST_HEADERS_NOT_FORWARDED = new Set([
  "connection",
  "content-length",
  "expect",
  "host",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  // fetch() decompresses the answer itself and then asks only for encodings it can decode; a
  // browser's "br, zstd" passed through could come back in an encoding it cannot.
  "accept-encoding",
]);

// fetch() has already decoded the body, so the upstream encoding and length no longer describe it.
const RESPONSE_HEADERS_NOT_FORWARDED = new Set([
  "connection",
  "content-encoding",
  "content-length",
  "keep-alive",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const METHODS_WITHOUT_BODY = new Set(["GET", "HEAD"]);
const STATUSES_WITHOUT_BODY = new Set([101, 204, 205, 304]);

/** Reads the proxy settings from the server's environment at request time (not build time). */
export function readProxyOptions(env: Record<string, string | undefined> = process.env): ProxyOptions {
  return {
    backendUrl: env.BACKEND_URL?.trim() || DEFAULT_BACKEND_URL,
    timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS,
  };
}

/** Forwards one request to the backend and returns its response, or a JSON 503 when it cannot. */
export async function proxyToBackend(request: Request, options: ProxyOptions): Promise<Response> {
  const backendBase = parseBackendUrl(options.backendUrl);
  if (backendBase === null) {
    return errorResponse(500, {
      detail: `BACKEND_URL must be an http(s) URL such as ${DEFAULT_BACKEND_URL}, got "${options.backendUrl}".`,
      code: "proxy_misconfigured",
    });
  }

  const incoming = new URL(request.url);
  const target = new URL(backendBase);
  target.pathname = backendBase.pathname.replace(/\/+$/, "") + incoming.pathname;
  target.search = incoming.search;

  // Buffered rather than streamed: statement files are small, a buffered body gets a proper
  // Content-Length (some ASGI servers reject chunked multipart), and it avoids undici's
  // `duplex: "half"` streaming mode.
  const body = METHODS_WITHOUT_BODY.has(request.method) ? undefined : await request.arrayBuffer();

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  // A browser that navigates away should not leave the backend working for nobody.
  const abortUpstream = (): void => controller.abort();
  request.signal.addEventListener("abort", abortUpstream, { once: true });

  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method: request.method,
      headers: forwardedRequestHeaders(request.headers),
      body,
      redirect: "manual",
      signal: controller.signal,
      cache: "no-store",
    });
  } catch (error) {
    request.signal.removeEventListener("abort", abortUpstream);
    if (timedOut) {
      return errorResponse(503, {
        detail: `The backend at ${backendBase.origin} did not answer within ${options.timeoutMs} ms.`,
        code: "backend_timeout",
      });
    }
    return errorResponse(503, {
      detail: `The backend at ${backendBase.origin} is unreachable (${describeFetchFailure(error)}); is it running?`,
      code: "backend_unreachable",
    });
  } finally {
    clearTimeout(timer);
  }

  const hasBody = request.method !== "HEAD" && !STATUSES_WITHOUT_BODY.has(upstream.status);
  return new Response(hasBody ? upstream.body : null, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: forwardedResponseHeaders(upstream.headers, backendBase),
  });
}

function parseBackendUrl(value: string): URL | null {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url : null;
  } catch {
    return null;
  }
}

function forwardedRequestHeaders(incoming: Headers): Headers {
  const headers = new Headers();
  for (const [name, value] of incoming) {
    if (!REQUEST_HEADERS_NOT_FORWARDED.has(name)) {
      headers.append(name, value);
    }
  }
  return headers;
}

function forwardedResponseHeaders(upstream: Headers, backendBase: URL): Headers {
  const headers = new Headers();
  for (const [name, value] of upstream) {
    if (RESPONSE_HEADERS_NOT_FORWARDED.has(name)) {
      continue;
    }
    headers.append(name, name === "location" ? relativeToBackend(value, backendBase) : value);
  }
  return headers;
}

/**
 * Turns a redirect to the backend's own origin (FastAPI's trailing-slash redirects are absolute)
 * into a path, so the browser follows it through this proxy instead of to a host it may not reach.
 */
function relativeToBackend(location: string, backendBase: URL): string {
  let url: URL;
  try {
    url = new URL(location, backendBase);
  } catch {
    return location;
  }
  if (url.origin !== backendBase.origin) {
    return location;
  }
  const prefix = backendBase.pathname.replace(/\/+$/, "");
  const path = prefix && url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
  return `${path}${url.search}${url.hash}`;
}

/** undici reports every network failure as "fetch failed"; the useful part is the cause's code. */
function describeFetchFailure(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === "string") {
    return cause.code === "ECONNREFUSED" ? "connection refused" : cause.code;
  }
  return error instanceof Error ? error.message : String(error);
}

function errorResponse(status: number, body: ProxyErrorBody): Response {
  return Response.json(body, { status, headers: { "cache-control": "no-store" } });
}
