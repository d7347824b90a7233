import "./globals.css";

import type { Metadata } from "next";
import Link from "next/link";
import type { ReactNode } from "react";

import { ApiDocsLink } from "@/components/api-docs-link";
import { SwrProvider } from "@/components/swr-provider";
import { publicAppUrl } from "@/lib/public-env";

export const metadata: Metadata = {
  metadataBase: new URL(publicAppUrl),
  title: { default: "Finance Report", template: "%s · Finance Report" },
  description: "Bank statement reconciliation for the Finance Report ledger.",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <header className="site-header">
          <Link href="/" className="brand">
            Finance Report
          </Link>
          <nav aria-label="Main">
            <Link href="/">Dashboard</Link>
            <Link href="/ping-pong">Ping-pong</Link>
            <Link href="/reconciliation">Reconciliation</Link>
            <ApiDocsLink>API docs</ApiDocsLink>
          </nav>
        </header>
        <main>
          <SwrProvider>{children}</SwrProvider>
        </main>
      </body>
    </html>
  );
}
