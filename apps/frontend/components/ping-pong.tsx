"use client";

import useSWR from "swr";
import useSWRMutation from "swr/mutation";

import { errorMessage, postJson, requestJson } from "@/lib/api-client";
import { formatTimestamp, type PingState, readPingState } from "@/lib/backend-responses";

import { ErrorState, Loading } from "./status-messages";

export const PING_PATH = "/api/ping";
export const PING_TOGGLE_PATH = "/api/ping/toggle";

async function fetchPing(path: string): Promise<PingState> {
  return readPingState(await requestJson(path));
}

async function togglePing(path: string): Promise<unknown> {
  return postJson(path);
}

/** Shows the shared ping/pong state and flips it; every toggle is a round trip through all services. */
export function PingPong() {
  const { data, error, isLoading, isValidating, mutate } = useSWR(PING_PATH, fetchPing);
  const toggle = useSWRMutation(PING_TOGGLE_PATH, togglePing, { throwOnError: false });

  async function onToggle(): Promise<void> {
    const answer = await toggle.trigger();
    if (answer === undefined) {
      return; // failed: toggle.error is shown below the button
    }
    try {
      // The toggle answers with the new state; use it instead of a second request.
      await mutate(readPingState(answer), { revalidate: false });
    } catch {
      await mutate();
    }
  }

  if (isLoading) {
    return <Loading what="the ping state" />;
  }
  if (error && !data) {
    return <ErrorState message={errorMessage(error)} onRetry={() => void mutate()} retrying={isValidating} />;
  }
  if (!data) {
    return null;
  }
  return (
    <section className="panel ping-pong" aria-live="polite">
      <p className="ping-state" data-testid="ping-state">
        {data.state.toUpperCase()}
      </p>
      <button type="button" data-testid="toggle-button" onClick={() => void onToggle()} disabled={toggle.isMutating}>
        {toggle.isMutating ? "Toggling…" : "Toggle"}
      </button>
      {toggle.error && (
        <p className="inline-error" role="alert" data-testid="toggle-error">
          Toggle failed: {errorMessage(toggle.error)}
        </p>
      )}
      <dl className="facts">
        <dt>Toggles</dt>
        <dd data-testid="toggle-count">{data.toggleCount}</dd>
        <dt>Last toggled</dt>
        <dd data-testid="last-toggled">
          {data.updatedAt ? <time dateTime={data.updatedAt}>{formatTimestamp(data.updatedAt)}</time> : "never"}
        </dd>
      </dl>
    </section>
  );
}
