#!/usr/bin/env bash
# Smoke-test a running Finance Report from a shell or a deploy runner: the same checks as
# `nox -s smoke`, because both run `python3 -m noxlib.smoke` — this script only forwards to it,
# and needs nothing but bash and python3 (standard library only; the browser part is optional).
#
# Read-only unless asked: the default mode (prod) never writes; the one writing check (the ping
# toggle, flipped and flipped back) runs only with an explicit MODE / --mode staging or dev.
#
# Usage: scripts/smoke_test.sh [BASE_URL] [MODE] [OPTION...]
#        BASE_URL=https://… scripts/smoke_test.sh [OPTION...]
#   BASE_URL  the frontend's URL (the argument, else $BASE_URL, else http://127.0.0.1:3000)
#   MODE      prod (default, read-only) | staging | dev (these two also toggle the ping state)
#   OPTION    passed on: --mode M, --api-only (BASE_URL is the backend), --no-browser,
#             --timeout S, --screenshots DIR, --help
# Env: BASE_URL       the frontend's URL when no argument gives one
#      EXPECTED_SHA   the git sha /api/health must report (prefix match either way)
#      SMOKE_ORIGIN   the Origin for the CORS preflight (default: BASE_URL's origin)
#      CHROMIUM_PATH  the Chromium to drive (default: chromium or chromium-browser on PATH)
# Exit: 0 every check passed, 1 a check failed, 2 usage error.
set -euo pipefail

# Builtins only (no dirname): the script must also run with a minimal PATH.
script_dir="${BASH_SOURCE[0]%/*}"
[[ "$script_dir" != "${BASH_SOURCE[0]}" ]] || script_dir="."
cd "$script_dir/.."

if ! command -v python3 >/dev/null 2>&1; then
  echo "smoke_test: error: python3 is not on PATH; install Python 3.9 or newer." >&2
  exit 2
fi

# The defaults (and BASE_URL) are read by noxlib/smoke/cli.py alone: pass only what was given.
args=()
if (($# > 0)) && [[ "$1" != -* ]]; then
  args+=(--base-url "$1")
  shift
  if (($# > 0)) && [[ "$1" != -* ]]; then
    args+=(--mode "$1")
    shift
  fi
fi
exec python3 -m noxlib.smoke "${args[@]}" "$@"
