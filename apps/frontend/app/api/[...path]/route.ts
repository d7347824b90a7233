// Every /api/* request goes to the backend; see lib/backend-proxy.ts for why this is a route
// handler rather than a rewrite. BACKEND_URL is read per request so one build serves any backend.
import { proxyToBackend, readProxyOptions } from "@/lib/backend-proxy";

function forward(request: Request): Promise<Response> {
  return proxyToBackend(request, readProxyOptions());
}

export const GET = forward;
export const HEAD = forward;
export const POST = forward;
export const PUT = forward;
export const PATCH = forward;
export const DELETE = forward;
export const OPTIONS = forward;
