import type { Metadata } from "next";

import { ReconciliationWorkbench } from "@/components/reconciliation-workbench";

export const metadata: Metadata = { title: "Reconciliation" };

export default function ReconciliationPage() {
  return (
    <>
      <h1>Reconciliation</h1>
      <ReconciliationWorkbench />
    </>
  );
}
