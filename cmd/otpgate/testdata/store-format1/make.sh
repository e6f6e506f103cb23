#!/bin/sh
# Writes otpgate.db, otpgate.db.key and facts.json in this directory with
# the otpgate of commit $1 (default 62e4c0e, the last build before the store
# recorded its format; format 1), by running makestore_test.go in a clean
# checkout of that commit. The key is a test key: it seals nothing real.
#
#   sh cmd/otpgate/testdata/store-format1/make.sh [COMMIT]
set -eu
commit=${1:-62e4c0e}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$repo" archive "$commit" | tar -x -C "$tmp"
cp "$here/makestore_test.go" "$tmp/cmd/otpgate/makestore_test.go"
rm -f "$here/otpgate.db" "$here/otpgate.db.key" "$here/facts.json"
(cd "$tmp" && OTPGATE_MAKE_STORE="$here" go test -count=1 -run '^TestMakeStore$' ./cmd/otpgate)
ls -l "$here"
