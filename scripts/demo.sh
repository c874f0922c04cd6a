#!/usr/bin/env bash
# The demo: what `make demo` runs after installing and building.
set -euo pipefail
cd "$(dirname "$0")/.."
VLP=build/bin/vlp
"$VLP" version
"$VLP" torch check
