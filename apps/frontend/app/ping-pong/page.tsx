import type { Metadata } from "next";

import { PingPong } from "@/components/ping-pong";

export const metadata: Metadata = { title: "Ping-pong" };

export default function PingPongPage() {
  return (
    <>
      <h1>Ping-pong</h1>
      <PingPong />
    </>
  );
}
