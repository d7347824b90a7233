import type { ReactNode } from "react";

const appUrl = process.env["NEXT_PUBLIC_APP_URL"];

export const metadata = { title: "Finance Report", metadataBase: appUrl ? new URL(appUrl) : undefined };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
