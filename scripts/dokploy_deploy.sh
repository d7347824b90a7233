#!/usr/bin/env bash
# Point a Dokploy compose at a new image tag and deploy it, through the Dokploy API.
#
# Usage:
#   scripts/dokploy_deploy.sh <compose_id> <image_tag> <app_url>
#   scripts/dokploy_deploy.sh --preview <name> <image_tag> <app_url>   find or create, then deploy
#   scripts/dokploy_deploy.sh --remove-preview <name>                  stop and delete (if present)
#
# Env (required):  DOKPLOY_API_URL (e.g. https://dokploy.example.com/api), DOKPLOY_API_KEY
# Env (optional):  ENV_SUFFIX      container/domain suffix, e.g. -pr-12 (default: none)
#                  GIT_COMMIT_SHA  the commit being deployed (default: GITHUB_SHA)
#                  DOKPLOY_TIMEOUT seconds one API call may take (default: 60; connecting: 10)
# Env (previews):  DOKPLOY_PREVIEW_ENVIRONMENT_ID  the Dokploy environment holding the previews
#                  DOKPLOY_PREVIEW_TEMPLATE_ID     compose whose source and env a new preview copies
#                  PREVIEW_BRANCH                  git branch a new preview builds from (optional)
#
# The compose's env (KEY=VALUE lines) is read, the deploy keys are upserted, every other line is
# kept as it was, and the result is written back before deploying: secrets set in Dokploy by hand
# survive every deploy. Every value of the compose env (whatever its key is called, except public
# NEXT_PUBLIC_*/COMPOSE_* keys, the keys this script sets and values under 4 characters) and the
# API key are masked in GitHub logs (::add-mask::) and replaced by *** in anything this script
# prints; in the API's replies, the value of every KEY=VALUE pair is replaced too. Request bodies
# go to curl through 0600 files, never its command line (which any process lister can read).
set -euo pipefail
umask 077

readonly PROG="dokploy_deploy"

die() {
  echo "$PROG: error: $1" >&2
  exit "${2:-1}"
}

# ---- inputs -------------------------------------------------------------------------------------
MODE="deploy"
case "${1:-}" in
  --preview) MODE="preview"; shift ;;
  --remove-preview) MODE="remove-preview"; shift ;;
  -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
  -*) die "unknown option '$1' (see --help)" 2 ;;
esac

missing=()
if [[ "$MODE" == "remove-preview" ]]; then
  PREVIEW_NAME="${1:-}"
  [[ -n "$PREVIEW_NAME" ]] || missing+=("argument <name>")
else
  TARGET="${1:-}"
  IMAGE_TAG="${2:-}"
  APP_URL="${3:-}"
  if [[ "$MODE" == "preview" ]]; then
    [[ -n "$TARGET" ]] || missing+=("argument <name>")
  else
    [[ -n "$TARGET" ]] || missing+=("argument <compose_id>")
  fi
  [[ -n "$IMAGE_TAG" ]] || missing+=("argument <image_tag>")
  [[ -n "$APP_URL" ]] || missing+=("argument <app_url>")
  GIT_COMMIT_SHA="${GIT_COMMIT_SHA:-${GITHUB_SHA:-}}"
  [[ -n "$GIT_COMMIT_SHA" ]] || missing+=("env GIT_COMMIT_SHA (or GITHUB_SHA)")
fi
[[ -n "${DOKPLOY_API_URL:-}" ]] || missing+=("env DOKPLOY_API_URL")
[[ -n "${DOKPLOY_API_KEY:-}" ]] || missing+=("env DOKPLOY_API_KEY")
if [[ "$MODE" != "deploy" ]]; then
  [[ -n "${DOKPLOY_PREVIEW_ENVIRONMENT_ID:-}" ]] || missing+=("env DOKPLOY_PREVIEW_ENVIRONMENT_ID")
fi
if [[ "$MODE" == "preview" ]]; then
  [[ -n "${DOKPLOY_PREVIEW_TEMPLATE_ID:-}" ]] || missing+=("env DOKPLOY_PREVIEW_TEMPLATE_ID")
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("the '$tool' command")
done
if ((${#missing[@]} > 0)); then
  printf '%s: error: missing %d input(s):\n' "$PROG" "${#missing[@]}" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "usage: scripts/dokploy_deploy.sh <compose_id> <image_tag> <app_url> (see --help)" >&2
  exit 2
fi
API_URL="${DOKPLOY_API_URL%/}"
TIMEOUT="${DOKPLOY_TIMEOUT:-60}"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "DOKPLOY_TIMEOUT must be a whole number of seconds, not '$TIMEOUT'" 2

# ---- secrets: masked in GitHub, redacted in our own output ------------------------------------
work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT
chmod 700 "$work_dir"
secrets_file="$work_dir/secrets"   # one secret value per line, read by redact()
header_file="$work_dir/headers"    # keeps the key off curl's command line (visible in ps)
response_file="$work_dir/response"
: >"$secrets_file"
printf 'x-api-key: %s\nContent-Type: application/json\n' "$DOKPLOY_API_KEY" >"$header_file"

mask() {
  local value
  while IFS= read -r value; do
    [[ -n "$value" ]] || continue
    printf '%s\n' "$value" >>"$secrets_file"
    if [[ "${GITHUB_ACTIONS:-}" == "true" ]]; then
      echo "::add-mask::$value"
    fi
  done
}

# redact [reply] — copies stdin to stdout with every known secret value replaced by ***, also in
# the forms a JSON reply spells it (escaped quotes, \uXXXX for non-ASCII). With `reply` (text from
# the API, which may echo an env we have not read yet) the value of every KEY=VALUE pair and every
# URL password goes too: a diagnosis needs the message, never the values.
redact() {
  python3 -c '
import json, re, sys
secrets = set()
for line in open(sys.argv[1], encoding="utf-8"):
    secret = line.rstrip("\n")
    if secret.strip():
        secrets |= {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
for secret in sorted(secrets, key=len, reverse=True):
    text = text.replace(secret, "***")
if sys.argv[2:] == ["reply"]:
    # KEY=VALUE up to the end of the line or of a JSON string (an unescaped quote).
    text = re.sub(r"\b([A-Za-z_][A-Za-z0-9_]*)=((?:\\\")?)(?:\\[^nrt]|[^\s\"\\])+", r"\1=\2***", text)
    text = re.sub(r"(://[^/\s:@]+:)[^/\s@]+@", r"\1***@", text)
sys.stdout.write(text)
' "$secrets_file" "$@"
}

printf '%s\n' "$DOKPLOY_API_KEY" | mask

# ---- API ----------------------------------------------------------------------------------------
# api METHOD ENDPOINT [BODY_FILE] — the reply body lands in $response_file; anything but a JSON
# 200 ends the script with the (redacted) reply, since a half-applied deploy must not look like
# success. The body is read by curl from BODY_FILE: on its command line anyone could read it.
api() {
  local method="$1" endpoint="$2" body_file="${3:-}" code
  local -a args=(-sS -X "$method" -H "@$header_file" -o "$response_file" -w '%{http_code}'
    --connect-timeout 10 --max-time "$TIMEOUT")
  [[ -z "$body_file" ]] || args+=(--data-binary "@$body_file")
  if ! code="$(curl "${args[@]}" "$API_URL/$endpoint" 2>"$work_dir/curl-error")"; then
    die "Dokploy API $method $endpoint did not answer within ${TIMEOUT} s: $(head -n 1 "$work_dir/curl-error" | redact reply)"
  fi
  if [[ "$code" != "200" ]]; then
    {
      echo "$PROG: error: Dokploy API $method $endpoint answered HTTP $code:"
      head -c 2000 "$response_file" | redact reply
      echo
      [[ "$code" != "401" && "$code" != "403" ]] || echo "hint: check DOKPLOY_API_KEY (it is sent as the x-api-key header)"
    } >&2
    exit 1
  fi
  if ! python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$response_file" 2>/dev/null; then
    local shown
    shown="$(head -c 200 "$response_file" | tr -s '\r\n\t' '   ' | redact reply)"
    die "Dokploy API $method $endpoint answered HTTP 200 but not JSON (is DOKPLOY_API_URL the API, ending in /api?): ${shown:-(empty reply)}"
  fi
}

# body_file NAME — prints the path of a fresh 0600 file for a request body (umask 077 above).
body_file() {
  printf '%s/%s.json' "$work_dir" "$1"
}

# json_get FIELD — prints a top-level field of the last reply ('' when absent or null).
json_get() {
  python3 -c '
import json, sys
reply = json.load(open(sys.argv[1], encoding="utf-8"))
value = reply.get(sys.argv[2]) if isinstance(reply, dict) else None
print("" if value is None else value)
' "$response_file" "$1"
}

# find_preview NAME — prints the composeId of the compose called NAME in the previews' environment.
find_preview() {
  api GET "environment.one?environmentId=$DOKPLOY_PREVIEW_ENVIRONMENT_ID"
  python3 -c '
import json, sys
reply = json.load(open(sys.argv[1], encoding="utf-8"))
composes = reply.get("compose") if isinstance(reply, dict) else None
ids = [c.get("composeId") for c in composes or [] if isinstance(c, dict) and c.get("name") == sys.argv[2]]
print(ids[0] if ids else "")
' "$response_file" "$1"
}

# create_preview NAME — creates a compose copying the template's source and env; prints its id.
create_preview() {
  local name="$1" compose_id payload
  api GET "compose.one?composeId=$DOKPLOY_PREVIEW_TEMPLATE_ID"
  cp "$response_file" "$work_dir/template.json"
  payload="$(body_file create)"
  python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "environmentId": sys.argv[2], "composeType": "docker-compose"}))' "$name" "$DOKPLOY_PREVIEW_ENVIRONMENT_ID" >"$payload"
  api POST compose.create "$payload"
  compose_id="$(json_get composeId)"
  [[ -n "$compose_id" ]] || die "Dokploy API compose.create answered without a composeId"
  # The template's env holds its secrets: mask them before anything could print them.
  python3 "$work_dir/env.py" secrets "$work_dir/template.json" | mask
  payload="$(body_file copy-template)"
  python3 -c '
import json, sys
template = json.load(open(sys.argv[1], encoding="utf-8"))
copied = ("sourceType", "composePath", "composeFile", "repository", "owner", "branch", "githubId",
          "customGitUrl", "customGitBranch", "customGitSSHKeyId", "env")
update = {key: template[key] for key in copied if template.get(key) is not None}
if sys.argv[3]:
    update.update({key: sys.argv[3] for key in ("branch", "customGitBranch") if key in update})
print(json.dumps({**update, "composeId": sys.argv[2]}))
' "$work_dir/template.json" "$compose_id" "${PREVIEW_BRANCH:-}" >"$payload"
  api POST compose.update "$payload"
  echo "$compose_id"
}

# deploy COMPOSE_ID — upsert the deploy keys into the compose env, save it, trigger a deploy.
deploy() {
  local compose_id="$1" payload
  api GET "compose.one?composeId=$compose_id"
  # Secret values get masked before anything else is printed.
  python3 "$work_dir/env.py" secrets "$response_file" | mask
  payload="$(body_file update)"
  python3 "$work_dir/env.py" update "$response_file" "$compose_id" \
    "IMAGE_TAG=$IMAGE_TAG" \
    "GIT_COMMIT_SHA=$GIT_COMMIT_SHA" \
    "NEXT_PUBLIC_APP_URL=$APP_URL" \
    "COMPOSE_PROFILES=app" \
    "ENV_SUFFIX=${ENV_SUFFIX:-}" >"$payload"
  api POST compose.update "$payload"
  echo "Updated compose $compose_id: IMAGE_TAG=$IMAGE_TAG GIT_COMMIT_SHA=$GIT_COMMIT_SHA NEXT_PUBLIC_APP_URL=$APP_URL COMPOSE_PROFILES=app ENV_SUFFIX=${ENV_SUFFIX:-}" | redact
  payload="$(body_file deploy)"
  python3 -c 'import json, sys; print(json.dumps({"composeId": sys.argv[1]}))' "$compose_id" >"$payload"
  api POST compose.deploy "$payload"
  echo "Deploy of compose $compose_id triggered; the health check tells when it is live."
}

# The env-file logic, in Python because jq is not on every machine and sed cannot parse JSON.
cat >"$work_dir/env.py" <<'PY'
import json
import re
import sys

# Any value may be a secret, whatever its key is called (WEBHOOK_URL, SENTRY_DSN, ...): all are
# masked except public keys (inlined into the frontend or read by compose itself), the keys this
# script sets (it prints them), and values too short to mean anything (masking "1" would mangle
# every log line).
PUBLIC_KEY = re.compile(r"^NEXT_PUBLIC_|_PUBLIC_KEY$|^COMPOSE_", re.I)
DEPLOY_KEYS = {"IMAGE_TAG", "GIT_COMMIT_SHA", "NEXT_PUBLIC_APP_URL", "COMPOSE_PROFILES", "ENV_SUFFIX"}
MIN_MASKED_LENGTH = 4
# docker-compose.yml reads the app containers' service addresses as APP_*: a copy of .env.example
# sets the plain names to the host's loopback addresses, which inside a container point at nothing.
# A compose env written before that rename keeps its deployment working: each plain value is
# carried over once to its APP_ twin (the line says which keys, never a value).
CARRIED_TO_APP = ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT", "BACKEND_URL")


def env_lines(reply_path):
    with open(reply_path, encoding="utf-8") as handle:
        reply = json.load(handle)
    env = (reply.get("env") if isinstance(reply, dict) else None) or ""
    return env.replace("\r\n", "\n").split("\n") if env else []


def split(line):
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or "=" not in stripped:
        return None, None
    key, _, value = stripped.removeprefix("export ").partition("=")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key.strip(), value


def secrets(reply_path):
    for line in env_lines(reply_path):
        key, value = split(line)
        if not key or len(value or "") < MIN_MASKED_LENGTH:
            continue
        if PUBLIC_KEY.search(key) or key in DEPLOY_KEYS:
            continue
        print(value)
        if '\\"' in value:  # "a\"b" in the file is a"b to whoever reads it
            print(value.replace('\\"', '"'))


def update(reply_path, compose_id, *assignments):
    wanted = dict(assignment.split("=", 1) for assignment in assignments)
    lines, seen = [], set()
    for line in env_lines(reply_path):
        key, _ = split(line)
        if key in wanted:
            if key not in seen:  # a duplicate would make the result depend on the parser
                lines.append(f"{key}={wanted[key]}")
                seen.add(key)
            continue
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    lines += [f"{key}={value}" for key, value in wanted.items() if key not in seen]
    present = dict(pair for pair in map(split, lines) if pair[0])
    carried = [key for key in CARRIED_TO_APP if present.get(key) and f"APP_{key}" not in present]
    lines += [f"APP_{key}={present[key]}" for key in carried]
    if carried:
        names = ", ".join(f"{key} -> APP_{key}" for key in carried)
        print(f"Carried the app's service addresses to the names docker-compose.yml reads: {names}", file=sys.stderr)
    print(json.dumps({"composeId": compose_id, "env": "\n".join(lines) + "\n"}))


if __name__ == "__main__":
    {"secrets": secrets, "update": update}[sys.argv[1]](*sys.argv[2:])
PY

# ---- main ---------------------------------------------------------------------------------------
case "$MODE" in
  deploy)
    deploy "$TARGET"
    ;;
  preview)
    compose_id="$(find_preview "$TARGET")"
    if [[ -z "$compose_id" ]]; then
      echo "Creating preview compose '$TARGET' from template $DOKPLOY_PREVIEW_TEMPLATE_ID"
      compose_id="$(create_preview "$TARGET")"
    fi
    deploy "$compose_id"
    ;;
  remove-preview)
    compose_id="$(find_preview "$PREVIEW_NAME")"
    if [[ -z "$compose_id" ]]; then
      echo "No preview compose named '$PREVIEW_NAME'; nothing to remove."
      exit 0
    fi
    payload="$(body_file stop)"
    python3 -c 'import json, sys; print(json.dumps({"composeId": sys.argv[1]}))' "$compose_id" >"$payload"
    api POST compose.stop "$payload"
    payload="$(body_file delete)"
    python3 -c 'import json, sys; print(json.dumps({"composeId": sys.argv[1], "deleteVolumes": True}))' "$compose_id" >"$payload"
    api POST compose.delete "$payload"
    echo "Preview '$PREVIEW_NAME' (compose $compose_id) stopped and deleted."
    ;;
esac
