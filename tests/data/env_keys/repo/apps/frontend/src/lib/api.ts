/**
 * The API base URL is inlined by `next build`, so it must stay a literal
 * `process.env.NEXT_PUBLIC_NAME` read; see .env.example.
 */
// Never read process.env.NEXT_PUBLIC_LEGACY_API here: it was retired.
export const API_URL = process.env.NEXT_PUBLIC_API_URL ?? "http://localhost:8000";

export async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(`${API_URL}${path}`);
  return (await response.json()) as T;
}
