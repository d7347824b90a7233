#!/usr/bin/env python3
"""Check the env-key contract (Settings, .env.example, Vault template, frontend build args).

The same check as `nox -s env_keys`; the rules live in the noxlib/env_keys package. Run it with an
interpreter that has the backend installed, or pass --settings-json. See --help.
"""

import sys
from pathlib import Path

# Run as a file, this script's directory (not the repo root) is on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from noxlib.env_keys import main

if __name__ == "__main__":
    sys.exit(main())
