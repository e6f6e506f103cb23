#!/usr/bin/env bash
# Runs otpgate and FreeRADIUS 3.2 side by side on this machine and prints
# the comparison table. Needs Go and FreeRADIUS (apt-get install freeradius);
# run as root or as a user who can read /etc/freeradius/3.0.
#   bash bench/run.sh                 # 5 s per cell, concurrency 1, 16, 64
#   bash bench/run.sh -duration 10s   # longer cells
set -euo pipefail
cd "$(dirname "$0")/.."
command -v freeradius >/dev/null || { echo "bench: install FreeRADIUS first: apt-get install freeradius" >&2; exit 1; }
go run ./bench "$@"
