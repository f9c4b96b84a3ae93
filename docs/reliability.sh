#!/usr/bin/env bash
# Prints, fault by fault, what each stage's tests observed: the lines the
# tests log as "outcome | FAULT | RESULT" (see logOutcome in scaffold_test.go).
# docs/reliability.md shows this output, and go test ./docs keeps it current.
set -euo pipefail
cd "$(dirname "$0")/.."
tests='TestDrippedAndLargeResponsesArriveWhole|TestRefusedConnectionFailsOnlyThatRequest|TestBrokenServersGiveClearErrors|TestServersNotWrittenHere|TestHugeResponsesAreCapped|TestLargeRequestIsSentWhole|TestDeadlineEndsTheRun|TestOutOfDescriptorsSaysWhichLimit|TestSignalsCostNoRequest'
for stage in [0-9][0-9]-*/; do
	stage=${stage%/}
	go test -count=1 -v -run "$tests" "./$stage" |
		sed -n "s/^.*outcome | \(.*\) | \(.*\)$/\1|$stage|\2/p"
done | awk -F'|' '
	!($1 in seen) { seen[$1] = 1; order[++faults] = $1 }
	{ rows[$1] = rows[$1] sprintf("  %-22s %s\n", $2, $3) }
	END { for (i = 1; i <= faults; i++) printf "%s\n%s\n", order[i], rows[order[i]] }'
