"""What everything is called, and the environment the apps are handed (the run contract)."""
