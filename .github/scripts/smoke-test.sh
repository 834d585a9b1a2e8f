#!/usr/bin/env bash
# Smoke test of a deployed Anno Platform, run by the deploy workflow after each rollout:
#   1. GET /ready answers 200 (retried while the new pods take the traffic);
#   2. GET /v1/me with a tenant API key answers 200 with that tenant and key.
#
#   ANNO_BASE_URL=https://api.staging.example.com ANNO_SMOKE_API_KEY=anno_live_… \
#       .github/scripts/smoke-test.sh
#
# The key is sent from standard input, never on curl's command line, so it appears in no
# process listing; nothing here prints it.
set -euo pipefail

base_url="${ANNO_BASE_URL:?set ANNO_BASE_URL to the public base URL, e.g. https://api.example.com}"
api_key="${ANNO_SMOKE_API_KEY:?set ANNO_SMOKE_API_KEY to a tenant API key of this environment}"
attempts="${SMOKE_READY_ATTEMPTS:-30}"
delay_seconds="${SMOKE_READY_DELAY_SECONDS:-10}"
base_url="${base_url%/}"

status=000
for attempt in $(seq 1 "$attempts"); do
    status=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 10 \
        "$base_url/ready" || true)
    if [ "$status" = 200 ]; then
        echo "GET /ready: 200 (attempt $attempt)"
        break
    fi
    echo "GET /ready: $status (attempt $attempt of $attempts)"
    if ((attempt < attempts)); then
        sleep "$delay_seconds"
    fi
done
if [ "$status" != 200 ]; then
    echo "::error::$base_url/ready did not answer 200 after $attempts attempts (last: $status)"
    exit 1
fi

body=$(mktemp)
trap 'rm -f "$body"' EXIT
status=$(printf 'Authorization: Bearer %s\n' "$api_key" |
    curl --silent --show-error --max-time 20 --header @- \
        --output "$body" --write-out '%{http_code}' "$base_url/v1/me" || true)
if [ "$status" != 200 ]; then
    echo "::error::GET /v1/me answered $status"
    # An error body is problem+json (code, detail, requestId): safe to show.
    head -c 2000 "$body" || true
    echo
    exit 1
fi
if ! jq -e '(.tenant.id | startswith("ten_")) and (.key.id | startswith("key_"))' "$body" >/dev/null; then
    echo "::error::GET /v1/me answered 200 without a tenant and a key"
    exit 1
fi
echo "GET /v1/me: 200, tenant $(jq -r '.tenant.id' "$body") ($(jq -r '.tenant.status' "$body"))"
