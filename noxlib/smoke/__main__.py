"""`python3 -m noxlib.smoke`: the smoke test's command line (noxlib/smoke/cli.py)."""

from noxlib.smoke.cli import main

raise SystemExit(main())
