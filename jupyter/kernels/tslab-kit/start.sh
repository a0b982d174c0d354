#!/bin/sh
# Starts tslab in the project root, so notebooks import ./src/... and relative data paths resolve from the root.
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT" && exec node node_modules/tslab/bin/tslab kernel --config-path "$1"
