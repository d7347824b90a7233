/**
 * Browser-side calls to the backend through the same-origin `/api` proxy.
 *
 * Every failure becomes an ApiError whose message is fit to show a person: the backend's
 * `detail` when it sent one (a statement's line-level error, the proxy's "backend unreachable"),
 * otherwise the HTTP status. Pages never show a stack trace or "[object Object]".
 */

export class ApiError extends Error {
  /** HTTP status, or 0 when no response arrived at all (offline, DNS, CORS). */
  readonly status: number;
  /** The backend's machine-readable `code`, when it sent one. */
  readonly code: string | null;

  constructor(message: string, status: number, code: string | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * Fetches `path` and returns its parsed JSON body.
 *
 * `acceptErrorBody` lets a caller keep a non-2xx body that is still a real answer: the health
 * endpoint reports an unhealthy backend as 503 with the full list of checks, which the dashboard
 * must show rather than a generic error.
 */
export async function requestJson(
  path: string,
  init: RequestInit = {},
  acceptErrorBody: (body: unknown) => boolean = () => false,
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(path, {
      ...init,
      headers: { accept: "application/json", ...init.headers },
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ApiError(`Could not reach the server (${reason}).`, 0);
  }

  const body = await readBody(response);
  if (response.ok || (body !== undefined && acceptErrorBody(body))) {
    return body;
  }
  throw new ApiError(
    describeErrorDetail(body) ?? `The server answered ${response.status} ${response.statusText}`.trim() + ".",
    response.status,
    readErrorCode(body),
  );
}

/** POSTs with no body (the action endpoints take none) and returns the parsed JSON answer. */
export function postJson(path: string): Promise<unknown> {
  return requestJson(path, { method: "POST" });
}

/** POSTs one file as multipart form data under `fieldName`, the way a plain HTML form would. */
export function postFile(path: string, fieldName: string, file: File): Promise<unknown> {
  const form = new FormData();
  form.append(fieldName, file, file.name);
  // No content-type header: the browser must write it itself to include the multipart boundary.
  return requestJson(path, { method: "POST", body: form });
}

/** Returns the message to show for any error thrown while loading or saving. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error && error.message) {
    return error.message;
  }
  return "Something went wrong.";
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text().catch(() => "");
  if (!text) {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not JSON (an HTML error page from something in between): the status says enough.
    return undefined;
  }
}

/**
 * Reads FastAPI's `detail`: a string for errors the app raises, a list of
 * `{loc, msg}` objects for request validation errors.
 */
function describeErrorDetail(body: unknown): string | null {
  if (!isRecord(body)) {
    return null;
  }
  const { detail } = body;
  if (typeof detail === "string" && detail.trim()) {
    return detail;
  }
  if (Array.isArray(detail) && detail.length > 0) {
    return detail
      .map((item) => {
        if (!isRecord(item)) {
          return String(item);
        }
        const where = Array.isArray(item.loc) ? item.loc.join(".") : "";
        const message = typeof item.msg === "string" ? item.msg : JSON.stringify(item);
        return where ? `${where}: ${message}` : message;
      })
      .join("; ");
  }
  return null;
}

function readErrorCode(body: unknown): string | null {
  return isRecord(body) && typeof body.code === "string" ? body.code : null;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
