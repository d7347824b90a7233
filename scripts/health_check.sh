#!/usr/bin/env bash
# Wait until a deployed backend reports itself healthy — and, when a tag is given, that it runs
# the commit we just deployed. A deploy API answering 200 only means "accepted"; the old
# containers keep serving until the new ones pass, so "healthy" alone can be the previous release.
#
# Usage: scripts/health_check.sh <health_url> <environment> [max_attempts] [image_tag]
#   health_url    e.g. https://report-staging.example.com/api/health
#   environment   a label for the messages (staging, production, pr-12)
#   max_attempts  how many times to ask (default 30)
#   image_tag     a git sha (short or long): the reply's git_sha must match it, prefix either way
# Env: HEALTH_CHECK_DELAY   seconds between attempts (default 10; tests set 0)
#      HEALTH_CHECK_TIMEOUT seconds one request may take (default 10)
# Exit: 0 healthy (and matching), 1 never became so, 2 usage error.
set -euo pipefail

readonly PROG="health_check"

usage_error() {
  echo "$PROG: error: $1" >&2
  echo "usage: scripts/health_check.sh <health_url> <environment> [max_attempts] [image_tag]" >&2
  exit 2
}

HEALTH_URL="${1:-}"
ENVIRONMENT="${2:-}"
MAX_ATTEMPTS="${3:-30}"
EXPECTED_SHA="${4:-}"
DELAY="${HEALTH_CHECK_DELAY:-10}"
TIMEOUT="${HEALTH_CHECK_TIMEOUT:-10}"

missing=()
[[ -n "$HEALTH_URL" ]] || missing+=("<health_url>")
[[ -n "$ENVIRONMENT" ]] || missing+=("<environment>")
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("the '$tool' command")
done
if ((${#missing[@]} > 0)); then
  usage_error "missing ${missing[*]}"
fi
[[ "$MAX_ATTEMPTS" =~ ^[1-9][0-9]*$ ]] || usage_error "max_attempts must be a positive integer, got '$MAX_ATTEMPTS'"
[[ "$DELAY" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "HEALTH_CHECK_DELAY must be a number of seconds, got '$DELAY'"
[[ "$TIMEOUT" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "HEALTH_CHECK_TIMEOUT must be a number of seconds, got '$TIMEOUT'"

body_file="$(mktemp)"
error_file="$(mktemp)"
trap 'rm -f "$body_file" "$error_file"' EXIT

# Reads the health JSON on stdin; prints "<verdict>\t<status>\t<git_sha>" where verdict is
# ok | degraded (<deps> failing) | unhealthy | sha-mismatch | not-json. Python, because jq is not
# on every machine. A deploy passes only when healthy: "degraded" (HTTP 200, the app serves but
# Redis or S3 fails) keeps a load balancer routing to it, yet is not a finished deploy.
# The sha rule is noxlib's (noxlib/smoke/checks.py sha_matches, which `nox -s smoke` also uses):
# the script runs from the checkout, and that module needs only the standard library (python3.9+).
repo_root="${BASH_SOURCE[0]%/*}/.."
[[ "$repo_root" != "${BASH_SOURCE[0]}/.." ]] || repo_root=".."
judge() {
  python3 -c '
import json, sys
sys.path.insert(0, sys.argv[2])
from noxlib.smoke.checks import sha_matches
expected = sys.argv[1].strip().lower()
try:
    reply = json.load(sys.stdin)
    status = str(reply.get("status", ""))
    sha = str(reply.get("git_sha") or "").strip().lower()
except (ValueError, AttributeError):
    print("not-json\t-\t-")
    raise SystemExit
if status == "degraded":
    # Serving, but a dependency (redis, s3) fails: not a finished deploy; name what fails.
    failing = reply.get("failing") or []
    verdict = "degraded (" + (", ".join(str(name) for name in failing) or "?") + " failing)"
elif status != "healthy":
    verdict = "unhealthy"
elif expected and not sha_matches(sha, expected):
    verdict = "sha-mismatch"
else:
    verdict = "ok"
print("\t".join([verdict, status or "-", sha or "-"]))
' "$EXPECTED_SHA" "$repo_root"
}

last_code="-"
last_verdict="no answer"
last_status="-"
last_sha="-"
echo "Checking $ENVIRONMENT health at $HEALTH_URL (up to $MAX_ATTEMPTS attempts, ${DELAY}s apart)${EXPECTED_SHA:+, expecting git_sha $EXPECTED_SHA}"
for ((attempt = 1; attempt <= MAX_ATTEMPTS; attempt++)); do
  : >"$body_file"
  if last_code="$(curl -sS --max-time "$TIMEOUT" -o "$body_file" -w '%{http_code}' "$HEALTH_URL" 2>"$error_file")"; then
    IFS=$'\t' read -r last_verdict last_status last_sha < <(judge <"$body_file")
    # A proxy can serve a cached healthy body with an error code; trust only a 200.
    [[ "$last_code" == "200" || "$last_verdict" != "ok" ]] || last_verdict="http-$last_code"
  else
    last_verdict="unreachable ($(head -c 200 "$error_file"))"
    last_status="-"
    last_sha="-"
  fi
  if [[ "$last_verdict" == "ok" ]]; then
    echo "✅ $ENVIRONMENT is healthy (attempt $attempt/$MAX_ATTEMPTS, git_sha $last_sha)"
    exit 0
  fi
  echo "attempt $attempt/$MAX_ATTEMPTS: $last_verdict (HTTP $last_code, status $last_status, git_sha $last_sha)"
  if ((attempt < MAX_ATTEMPTS)); then
    sleep "$DELAY"
  fi
done

body_excerpt="$(head -c 500 "$body_file")"
cat >&2 <<EOF
❌ $ENVIRONMENT did not become healthy after $MAX_ATTEMPTS attempts.

  URL:            $HEALTH_URL
  last result:    $last_verdict
  last HTTP code: $last_code
  last status:    $last_status
  git_sha seen:   $last_sha
  git_sha wanted: ${EXPECTED_SHA:-(not checked)}
  last body:      ${body_excerpt:-(empty)}

Troubleshooting:
  - unreachable / HTTP 000: DNS, TLS or the proxy route; is the domain pointed at the server?
  - HTTP 502/504: the container is not up; read the backend logs in Dokploy for a crash at start-up.
  - unhealthy (HTTP 503): PostgreSQL failed its check; the app cannot serve.
  - degraded (HTTP 200): the app serves, but the named dependency (redis, s3) fails its check.
  - sha-mismatch: the old release is still serving; the deploy may have failed or not rolled out.
EOF
exit 1
