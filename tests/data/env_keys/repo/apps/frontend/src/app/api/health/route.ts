// Server-side only: read per request, never inlined into the browser bundle.
export async function GET(): Promise<Response> {
  const backend = process.env.BACKEND_URL ?? "http://127.0.0.1:8000";
  return fetch(`${backend}/api/health`);
}
