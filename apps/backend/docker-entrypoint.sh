#!/bin/sh
# Container entry point: load the secrets the Vault agent rendered, then run the given command.
# Settings read only real environment variables, so the file is exported into the environment here.
set -eu

secrets_file="${VAULT_SECRETS_FILE:-/secrets/.env}"
if [ -f "$secrets_file" ]; then
    set -a
    # shellcheck source=/dev/null  # rendered at deploy time, not in the repository
    . "$secrets_file"
    set +a
else
    echo "docker-entrypoint: $secrets_file not found; using the container environment only" >&2
fi

exec "$@"
