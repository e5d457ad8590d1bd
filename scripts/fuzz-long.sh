#!/usr/bin/env bash
# The long fuzz run of the flow decoders: the same suite as test/fuzz/decode-fuzz.test.ts in
# `npm test`, with FUZZ_PACKETS (default 1,000,000) mutated datagrams per protocol. Prints one
# line per protocol (packets, packets/s, flows, errors by reason); exits non-zero on any failure.
# Usage: scripts/fuzz-long.sh [packets per protocol]   (FUZZ_SEED=N for another mutation seed)
set -uo pipefail
cd "$(dirname "$0")/.."
export FUZZ_PACKETS="${1:-${FUZZ_PACKETS:-1000000}}"
log="$(mktemp -t flowbus-fuzz-long.XXXXXX.log)"
echo "fuzzing the NetFlow v5, NetFlow v9, IPFIX and sFlow decoders, ${FUZZ_PACKETS} mutated datagrams each (log: ${log})"
NO_COLOR=1 npx vitest run test/fuzz/decode-fuzz.test.ts 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"${log}"
status=${PIPESTATUS[0]}
grep -E '^fuzz ' "${log}"
# vitest's own summary, and the failures if any.
sed -n '/Failed Tests/,$p' "${log}" | head -200
grep -E '^ +(Tests|Duration) ' "${log}"
exit "${status}"
