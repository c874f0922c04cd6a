#!/usr/bin/env bash
# make test's stages after the build: formatting, vet, every package's tests
# (plain, then the concurrent packages under the race detector). A failing
# stage does not stop the others: every stage runs, then the script lists
# what failed and exits 1 if anything did.
#
#   GO, LIB, BIN, PYTHON   as the Makefile passes them
#   RACE_PKGS              the packages tested under -race (and not plainly)
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
LIB=${LIB:-$PWD/build/lib/libvlptorch.so}
BIN=${BIN:-$PWD/build/bin/vlp}
PYTHON=${PYTHON:-/usr/bin/python3}
RACE_PKGS=${RACE_PKGS:-./coordinator/... ./allreduce/... ./worker/...}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()

stage() { # stage NAME CMD...: runs CMD, output to the terminal and to $logs/NAME
	local name=$1
	shift
	echo "== $name"
	"$@" 2>&1 | tee "$logs/$name"
	local rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ]; then
		failed+=("$name (exit $rc)")
	fi
}

fmt_check() {
	local out
	out="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
	if [ -n "$out" ]; then
		echo "gofmt needs to run on:"
		echo "$out"
		return 1
	fi
}

export VLP_TORCH_LIB="$LIB" VLP_PYTHON="$PYTHON" VLP_BIN="$BIN"
race_list=$($GO list $RACE_PKGS 2>/dev/null || true)
# integration/ runs its short scenario subset in a stage of its own (make chaos runs them all).
integration_pkg=github.com/e2evlp/vlp/integration
# The learning test (model.TestModelLearnsShapes: one core for most of the run) is a go test of
# its own, started first; every other test of the model package runs in the plain stage beside it,
# model first so that the next longest package starts at once.
model_pkg=github.com/e2evlp/vlp/model
learn_test='^TestModelLearnsShapes$'
plain_list=$(printf '%s\n' $model_pkg; $GO list ./... | grep -v -x -F -f <(printf '%s\n' $race_list $integration_pkg $model_pkg))

stage gofmt fmt_check
stage vet $GO vet ./...
# The learning test runs beside the plain stage and then the race stage, into its own log printed
# after them: two processes on two cores at any time (the race-tested packages' timing-sensitive
# tests on a core of their own, not shared three or four ways).
($GO test -count=1 -timeout 25m -v -run "$learn_test" $model_pkg >"$logs/test-learn" 2>&1; echo $? >"$logs/test-learn.rc") &
learn_pid=$!
stage test $GO test -count=1 -p 1 -timeout 25m -skip "$learn_test" $plain_list
if [ -n "$race_list" ]; then
	stage test-race $GO test -race -count=1 -p 1 -timeout 25m $race_list
fi
wait "$learn_pid"
echo "== test-learn (model.TestModelLearnsShapes, ran beside the plain and race stages)"
cat "$logs/test-learn"
if [ "$(cat "$logs/test-learn.rc" 2>/dev/null || echo 1)" -ne 0 ]; then
	failed+=("test-learn (exit $(cat "$logs/test-learn.rc" 2>/dev/null || echo 1))")
fi
# The short scenarios: real processes in network namespaces, faults injected (they skip, saying
# why, without root or ip netns).
stage integration $GO test -count=1 -short -timeout 5m ./integration/

if [ ${#failed[@]} -gt 0 ]; then
	echo
	echo "make test: ${#failed[@]} stage(s) failed:"
	for f in "${failed[@]}"; do
		echo "  - $f"
		# the packages (and their failing tests) that go test reported
		grep -h -E '^(FAIL|--- FAIL)' "$logs/${f%% (*}" 2>/dev/null | sed 's/^/      /'
	done
	exit 1
fi
echo
echo "make test: every stage passed"
