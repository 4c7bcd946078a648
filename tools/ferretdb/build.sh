#!/bin/sh
# Build FerretDB v1.24.2 (SQLite backend) into $1, with one upstream bug patched.
#
# The bug: FerretDB's SQLite backend creates each collection's _id index on the
# expression  _ferretdb_sjson->"_id"  but looks documents up with
#             _ferretdb_sjson->'$._id'
# SQLite matches index expressions by their text, so no _id lookup, update or
# delete ever uses the index: each one scans the whole table and parses every
# document's JSON (EXPLAIN QUERY PLAN says SCAN). Billing then slows down as the
# store grows. The patch makes the lookups use the index's own expression
# (same values: both select the top-level _id), so they become index searches.
# tests/integration/foundation/test_store.py checks the plan through `explain`.
#
# How: copy the module from the Go module cache, patch one line, and build the
# wrapper (main.go) against the copy through a temporary go.mod with a replace.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$1")" "$here/../../.local"
out=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(cd "$here/../../.local" && pwd)/ferretdb-build

cd "$here"
src=$(go mod download -json github.com/FerretDB/FerretDB@v1.24.2 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "ferretdb build: module source not found (go mod download failed?)" >&2; exit 1; }

if [ -d "$work" ]; then chmod -R u+w "$work"; fi  # a copy interrupted before its chmod is read-only
rm -rf "$work"
mkdir -p "$work"
cp -R "$src" "$work/FerretDB"
chmod -R u+w "$work/FerretDB"

meta="$work/FerretDB/internal/backends/sqlite/metadata/metadata.go"
before="IDColumn = DefaultColumn + \"->'\$._id'\""
after="IDColumn = DefaultColumn + \"->'_id'\""
grep -qF "$before" "$meta" || { echo "ferretdb build: patch target not found in $meta" >&2; exit 1; }
sed "s|->'\\\$\\._id'\"|->'_id'\"|" "$meta" > "$meta.new" && mv "$meta.new" "$meta"  # no sed -i: BSD differs
grep -qF "$after" "$meta" || { echo "ferretdb build: patch did not apply to $meta" >&2; exit 1; }

cp go.mod "$work/go.mod"
cp go.sum "$work/go.sum"
go mod edit -modfile="$work/go.mod" -replace "github.com/FerretDB/FerretDB=$work/FerretDB"
go build -modfile="$work/go.mod" -o "$out.tmp" .
mv "$out.tmp" "$out"  # atomic: a running ferretdb keeps its old binary
echo "ferretdb build: $out (v1.24.2, _id lookups use the _id index)"
