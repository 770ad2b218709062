#!/usr/bin/env bash
# Set up, train the default model on the shipped labels if no production model exists, serve the app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
exec policytag serve --train-if-missing "$@"
