#!/usr/bin/env bash
# check-solutions.sh: proves the exercises' contract, for whoever changes a
# stage or an exercise (make check-solutions):
#
#   1. on the stages as they are, every checker fails (and says why);
#   2. each reference solution, docs/exercises/solutions/NN.K.patch, applies
#      with `git apply` and makes its own checker pass, and the stage it
#      changes still passes go vet, its tests included.
#
# It works on copies of the working tree (the files git tracks or would
# track, committed or not, without the ignored ones), so it never touches
# yours, and sees your uncommitted changes. It prints one line per exercise
# and exits with 1 if anything is off.

set -uo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 2
cd "$root" || exit 2
solutions=docs/exercises/solutions
checks=./docs/exercises/checks

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-solutions.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# copy_tree DEST: the working tree's files, tracked or untracked but not
# ignored, as they are on disk now. DEST becomes a git repository of its own,
# so that git apply there applies to DEST and nothing above it.
copy_tree() {
	mkdir -p "$1"
	git ls-files -z -co --exclude-standard |
		while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
		tar --null -T - -cf - | tar -xf - -C "$1"
	git -C "$1" init -q
}

# test_name 03.1 → TestExercise03_1
test_name() { echo "TestExercise${1/./_}"; }

failures=0
problem() {
	echo "$@"
	failures=$((failures + 1))
}

ids=()
for patch in "$solutions"/*.patch; do
	[[ -e $patch ]] || continue
	id=$(basename "$patch" .patch)
	ids+=("$id")
done
if ((${#ids[@]} == 0)); then
	echo "no solutions in $solutions"
	exit 1
fi

# Every checker has a solution, and every solution a checker.
declared=$(grep -ho '^func TestExercise[0-9]*_[0-9]*' docs/exercises/checks/*_test.go | sed 's/^func //' | sort)
for id in "${ids[@]}"; do
	grep -qx "$(test_name "$id")" <<<"$declared" || problem "  $id  has a solution but no checker ($(test_name "$id") in docs/exercises/checks)"
done
for name in $declared; do
	id=${name#TestExercise}
	id=${id/_/.}
	[[ -e $solutions/$id.patch ]] || problem "  $id  has a checker but no solution ($solutions/$id.patch)"
done

start=$SECONDS
echo "copying the working tree to $tmp"
copy_tree "$tmp/base"

# 1. The untouched tree: every checker must fail. They run in one go test, so
# each stage is built once.
echo
echo "on the untouched stages, every checker must fail:"
out=$(cd "$tmp/base" && go test -tags exercises -count=1 -v -run '^TestExercise' "$checks" 2>&1)
for id in "${ids[@]}"; do
	name=$(test_name "$id")
	result=$(grep -E "^--- (PASS|FAIL|SKIP): $name " <<<"$out" | awk '{print $2}')
	reason=$(grep -m1 -E "^ +[a-z0-9_]+_test\.go:[0-9]+: $id: " <<<"$out" | sed -E "s/^ +[a-z0-9_]+_test\.go:[0-9]+: $id: //")
	((${#reason} > 120)) && reason="${reason:0:120}…"
	case $result in
	FAIL:) printf '  %s  fails, as it should: %s\n' "$id" "$reason" ;;
	SKIP:) printf '  %s  skipped here: %s\n' "$id" "$reason" ;;
	PASS:) problem "  $id  PASSES on the untouched stage: the checker does not check the exercise" ;;
	*)
		problem "  $id  did not run:"
		tail -20 <<<"$out" | sed 's/^/        /'
		;;
	esac
done

# 2. Each solution, applied to a copy of its own, passes its checker.
echo
echo "each solution, applied to a copy, must pass its checker:"
for id in "${ids[@]}"; do
	patch="$root/$solutions/$id.patch"
	dir="$tmp/$id"
	cp -a "$tmp/base" "$dir"
	if ! msg=$(git -C "$dir" apply "$patch" 2>&1); then
		problem "  $id  does not apply: $(head -3 <<<"$msg" | tr '\n' ' ')"
		continue
	fi
	stages=$(grep -oE '^\+\+\+ b/[0-9][0-9]-[^/]+' "$patch" | sed 's|^+++ b/|./|' | sort -u | tr '\n' ' ')
	began=$SECONDS
	# shellcheck disable=SC2086 # one argument per stage
	if ! msg=$(cd "$dir" && go vet $stages 2>&1); then
		problem "  $id  go vet $stages fails after the patch:"
		sed 's/^/        /' <<<"$msg" | head -20
		continue
	fi
	if msg=$(cd "$dir" && go test -tags exercises -count=1 -v -run "^$(test_name "$id")\$" "$checks" 2>&1); then
		if grep -q -- "--- SKIP: $(test_name "$id")" <<<"$msg"; then
			printf '  %s  skipped here (%ds)\n' "$id" $((SECONDS - began))
		else
			printf '  %s  passes (%ds)\n' "$id" $((SECONDS - began))
		fi
	else
		problem "  $id  FAILS its checker with the solution applied:"
		grep -vE '^(=== RUN|FAIL|ok )' <<<"$msg" | head -20 | sed 's/^/        /'
	fi
	rm -rf "$dir"
done

echo
if ((failures > 0)); then
	echo "check-solutions: $failures problem(s) in ${#ids[@]} exercises ($((SECONDS - start))s)"
	exit 1
fi
echo "check-solutions: all ${#ids[@]} exercises keep their contract ($((SECONDS - start))s)"
