#!/bin/sh
# fuzz-smoke.sh — run each libFuzzer target for a short time (`make fuzz-smoke`).
#
#   fuzz-smoke.sh SRCDIR BUILDDIR TARGET...
#
# For each TARGET, BUILDDIR/tests/fuzz/fuzz_TARGET runs for $FUZZ_SECONDS
# (default 20) on a fresh copy of SRCDIR/tests/fuzz/corpus/TARGET/ (what it
# finds is added to the copy, never to the source tree), with the regression
# inputs of SRCDIR/tests/fuzz/regress/TARGET/ read as well. A crash, leak,
# timeout or out-of-memory fails the run; its input is left in
# BUILDDIR/fuzz-artifacts/TARGET-crash-<sha1> (or -leak-, -timeout-, -oom-)
# with the log in BUILDDIR/fuzz-smoke/TARGET.log. Every target runs even
# after one fails; the exit status is 1 if any did.
set -u
src=$1 build=$2
shift 2
seconds=${FUZZ_SECONDS:-20}
work="$build/fuzz-smoke"
artifacts="$build/fuzz-artifacts"
mkdir -p "$work" "$artifacts"
failed=""
for t in "$@"; do
	corpus="$work/corpus-$t"
	rm -rf "$corpus" && mkdir -p "$corpus"
	cp "$src/tests/fuzz/corpus/$t/"* "$corpus/"
	log="$work/$t.log"
	# libFuzzer keeps every input it runs in memory: -max_len bounds them.
	"$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
		"$corpus" "$src/tests/fuzz/regress/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	if [ "$rc" = 0 ]; then
		echo "fuzz-smoke: $t: ${execs:-?} runs in ${seconds}s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files, no crash"
	else
		echo "fuzz-smoke: $t: FAILED (exit $rc), log $log:" >&2
		grep -E 'ERROR|SUMMARY|Test unit written|#[0-9]+ 0x.* in ' "$log" | head -n 20 >&2
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz-smoke: FAILED:$failed (inputs in $artifacts: replay one with tests/fuzz/replay_TARGET FILE)" >&2
	exit 1
fi
echo "fuzz-smoke: $# targets, ${seconds}s each, no crash"
