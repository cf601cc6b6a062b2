#!/usr/bin/env bash
# Installs what the renderer end-to-end test (test/renderers) needs, from the ordinary package sources
# only: Debian's chromium (never a test tool's own browser download), the renderer pages' npm
# sub-package (test/renderers/app: LHC-Forms, helsenorge Refero, React, vite), and the vite build of the
# Refero page into test/renderers/app/dist. Safe to run again: each step is skipped when already done.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
APP="test/renderers/app"

if ! command -v chromium >/dev/null 2>&1; then
  echo "== renderers: apt-get install chromium" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# The lock file is the contract; a lock newer than the installed tree means the tree is stale.
if [ ! -d "$APP/node_modules" ] || [ "$APP/package-lock.json" -nt "$APP/node_modules/.package-lock.json" ]; then
  echo "== renderers: npm ci in $APP" >&2
  # .npmrc there sets legacy-peer-deps (lforms' Angular peers otherwise stall the resolver for minutes).
  (cd "$APP" && npm ci --no-audit --no-fund)
fi

# Rebuild when any source of the page is newer than the build.
if [ ! -f "$APP/dist/index.html" ] ||
  [ -n "$(find "$APP/index.html" "$APP/vite.config.mjs" "$APP/src" "$APP/public" "$APP/package-lock.json" \
    -newer "$APP/dist/index.html" -print -quit)" ]; then
  echo "== renderers: vite build" >&2
  (cd "$APP" && npm run --silent build)
fi
