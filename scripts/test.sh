#!/usr/bin/env bash
# Builds the solution and runs the whole test suite (unit, parity, end-to-end).
# Extra arguments go to `dotnet test` (e.g. --filter "FullyQualifiedName~Parity").
# Ends with one line "N passed, N failed, N skipped" that CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
results="$(mktemp -d)"
dotnet build PixArtLora.sln -c Release -nologo -v q -clp:ErrorsOnly || { echo "0 passed, 1 failed"; exit 1; }
dotnet test PixArtLora.sln -c Release --no-build -nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
  --results-directory "$results" "$@"
status=$?
trx="$(find "$results" -name '*.trx' | head -n 1)"
if [[ -z "$trx" ]]; then echo "0 passed, 1 failed"; exit 1; fi
counters="$(grep -o '<Counters [^>]*>' "$trx")"
get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
total=$(get total); executed=$(get executed); passed=$(get passed); failed=$(get failed)
skipped=$((total - executed))
echo
echo "$passed passed, $failed failed, $skipped skipped"
[[ "$failed" == "0" && $status -eq 0 ]] || exit 1
