import { HealthDashboard } from "@/components/health-dashboard";

export default function DashboardPage() {
  return (
    <>
      <h1>Dashboard</h1>
      <HealthDashboard />
    </>
  );
}
