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
# Env (previews):  DOKPLOY_PREVIEW_ENVIRONMENT_ID  the Dokploy environment holding the previews
#                  DOKPLOY_PREVIEW_TEMPLATE_ID     compose whose source and env a new preview copies
#                  PREVIEW_BRANCH                  git branch a new preview builds from (optional)
#
# The compose's env (KEY=VALUE lines) is read, the deploy keys are upserted, every other line is
# kept as it was, and the result is written back before deploying: secrets set in Dokploy by hand
# survive every deploy. Values of secret-looking keys and the API key are masked in GitHub logs
# (::add-mask::) and replaced by *** in anything this script prints.
set -euo pipefail

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
  -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
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

# Copies stdin to stdout with every known secret value replaced by ***, and — for replies that
# echo an env we have not read yet — the value of any secret-looking KEY=VALUE or URL password.
redact() {
  python3 -c '
import re, sys
secrets = [line.rstrip("\n") for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
text = sys.stdin.read()
for secret in sorted(secrets, key=len, reverse=True):
    text = text.replace(secret, "***")
secret_pair = r"\b([A-Za-z0-9_]*(?:PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|DSN)[A-Za-z0-9_]*)=((?:\\)?\"?)[^\s\"\\]+"
text = re.sub(secret_pair, r"\1=\2***", text, flags=re.I)
text = re.sub(r"(://[^/\s:@]+:)[^/\s@]+@", r"\1***@", text)
sys.stdout.write(text)
' "$secrets_file"
}

printf '%s\n' "$DOKPLOY_API_KEY" | mask

# ---- API ----------------------------------------------------------------------------------------
# api METHOD ENDPOINT [JSON_BODY] — the reply body lands in $response_file; anything but 200 ends
# the script with the (redacted) reply, since a half-applied deploy must not look like success.
api() {
  local method="$1" endpoint="$2" body="${3:-}" code
  local -a args=(-sS -X "$method" -H "@$header_file" -o "$response_file" -w '%{http_code}')
  [[ -z "$body" ]] || args+=(--data-binary "$body")
  if ! code="$(curl "${args[@]}" "$API_URL/$endpoint" 2>"$work_dir/curl-error")"; then
    die "Dokploy API $method $endpoint did not answer: $(redact <"$work_dir/curl-error")"
  fi
  if [[ "$code" != "200" ]]; then
    {
      echo "$PROG: error: Dokploy API $method $endpoint answered HTTP $code:"
      head -c 2000 "$response_file" | redact
      echo
      [[ "$code" != "401" && "$code" != "403" ]] || echo "hint: check DOKPLOY_API_KEY (it is sent as the x-api-key header)"
    } >&2
    exit 1
  fi
}

# json_get FIELD — prints a top-level field of the last reply ('' when absent or null).
json_get() {
  python3 -c '
import json, sys
value = json.load(open(sys.argv[1], encoding="utf-8")).get(sys.argv[2])
print("" if value is None else value)
' "$response_file" "$1"
}

# find_preview NAME — prints the composeId of the compose called NAME in the previews' environment.
find_preview() {
  api GET "environment.one?environmentId=$DOKPLOY_PREVIEW_ENVIRONMENT_ID"
  python3 -c '
import json, sys
reply = json.load(open(sys.argv[1], encoding="utf-8"))
ids = [c["composeId"] for c in reply.get("compose") or [] if c.get("name") == sys.argv[2]]
print(ids[0] if ids else "")
' "$response_file" "$1"
}

# create_preview NAME — creates a compose copying the template's source and env; prints its id.
create_preview() {
  local name="$1" compose_id payload
  api GET "compose.one?composeId=$DOKPLOY_PREVIEW_TEMPLATE_ID"
  cp "$response_file" "$work_dir/template.json"
  payload="$(python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "environmentId": sys.argv[2], "composeType": "docker-compose"}))' "$name" "$DOKPLOY_PREVIEW_ENVIRONMENT_ID")"
  api POST compose.create "$payload"
  compose_id="$(json_get composeId)"
  [[ -n "$compose_id" ]] || die "Dokploy API compose.create answered without a composeId"
  payload="$(python3 -c '
import json, sys
template = json.load(open(sys.argv[1], encoding="utf-8"))
copied = ("sourceType", "composePath", "composeFile", "repository", "owner", "branch", "githubId",
          "customGitUrl", "customGitBranch", "customGitSSHKeyId", "env")
update = {key: template[key] for key in copied if template.get(key) is not None}
if sys.argv[3]:
    update.update({key: sys.argv[3] for key in ("branch", "customGitBranch") if key in update})
print(json.dumps({**update, "composeId": sys.argv[2]}))
' "$work_dir/template.json" "$compose_id" "${PREVIEW_BRANCH:-}")"
  api POST compose.update "$payload"
  echo "$compose_id"
}

# deploy COMPOSE_ID — upsert the deploy keys into the compose env, save it, trigger a deploy.
deploy() {
  local compose_id="$1" payload
  api GET "compose.one?composeId=$compose_id"
  # Secret values get masked before anything else is printed.
  python3 "$work_dir/env.py" secrets "$response_file" | mask
  payload="$(python3 "$work_dir/env.py" update "$response_file" "$compose_id" \
    "IMAGE_TAG=$IMAGE_TAG" \
    "GIT_COMMIT_SHA=$GIT_COMMIT_SHA" \
    "NEXT_PUBLIC_APP_URL=$APP_URL" \
    "COMPOSE_PROFILES=app" \
    "ENV_SUFFIX=${ENV_SUFFIX:-}")"
  api POST compose.update "$payload"
  echo "Updated compose $compose_id: IMAGE_TAG=$IMAGE_TAG GIT_COMMIT_SHA=$GIT_COMMIT_SHA NEXT_PUBLIC_APP_URL=$APP_URL COMPOSE_PROFILES=app ENV_SUFFIX=${ENV_SUFFIX:-}" | redact
  payload="$(python3 -c 'import json, sys; print(json.dumps({"composeId": sys.argv[1]}))' "$compose_id")"
  api POST compose.deploy "$payload"
  echo "Deploy of compose $compose_id triggered; the health check tells when it is live."
}

# The env-file logic, in Python because jq is not on every machine and sed cannot parse JSON.
cat >"$work_dir/env.py" <<'PY'
import json
import re
import sys

# Key names whose values must never reach a log; URLs carrying a password count too.
SECRET_KEY = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|DSN|COOKIE|SALT", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
PUBLIC_KEY = re.compile(r"^NEXT_PUBLIC_|_PUBLIC_KEY$|^COMPOSE_", re.I)


def env_lines(reply_path):
    with open(reply_path, encoding="utf-8") as handle:
        env = json.load(handle).get("env") or ""
    return env.replace("\r\n", "\n").split("\n") if env else []


def split(line):
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or "=" not in stripped:
        return None, None
    key, _, value = stripped.removeprefix("export ").partition("=")
    return key.strip(), value.strip().strip("'\"")


def secrets(reply_path):
    for line in env_lines(reply_path):
        key, value = split(line)
        if not key or not value:
            continue
        looks_secret = SECRET_KEY.search(key) and not PUBLIC_KEY.search(key)
        if looks_secret or URL_WITH_PASSWORD.search(value):
            print(value)


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
    payload="$(python3 -c 'import json, sys; print(json.dumps({"composeId": sys.argv[1]}))' "$compose_id")"
    api POST compose.stop "$payload"
    payload="$(python3 -c 'import json, sys; print(json.dumps({"composeId": sys.argv[1], "deleteVolumes": True}))' "$compose_id")"
    api POST compose.delete "$payload"
    echo "Preview '$PREVIEW_NAME' (compose $compose_id) stopped and deleted."
    ;;
esac
