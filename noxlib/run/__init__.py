"""A run's resources: leases on the services, its databases, bucket and roles, cleanup."""
