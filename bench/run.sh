#!/usr/bin/env bash
# Runs otpgate and FreeRADIUS 3.2 side by side on this machine and prints
# the comparison as a markdown table on standard output (progress goes to
# standard error). Needs Go and FreeRADIUS (apt-get install freeradius);
# FreeRADIUS runs from a private copy of /etc/freeradius/3.0, which only
# root and the freerad group can read. Flags go to the bench program:
#   bash bench/run.sh                       # 10 s per cell, concurrency 1, 16, 64 (about 4 minutes)
#   bash bench/run.sh -duration 2s          # a quick look
#   bash bench/run.sh -cpuprofile prof      # also CPU profiles of otpgate, one per cell, and its heap
#   bash bench/run.sh -compare ../other -scenarios totp -c 16,64 -reps 7 -startup-users 0 -scale-users ""
#                                           # another checkout's build (B) against this one's (A), cell by cell
#   bash bench/run.sh -h                    # every flag
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || { echo "bench: Go is needed" >&2; exit 1; }
command -v freeradius >/dev/null || { echo "bench: install FreeRADIUS first: apt-get install freeradius" >&2; exit 1; }
[ -r /etc/freeradius/3.0/radiusd.conf ] || { echo "bench: cannot read /etc/freeradius/3.0: run as root or as a member of the freerad group" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/bench" ./bench
"$tmp/bench" "$@"
