#!/usr/bin/env bash
# Scale run of the importer (manual, not part of `make test`): writes COCO +
# Visual Genome annotation files the size of the real ones with
# `vlp data synth --scale full`, imports them with `vlp shard build`, resumes
# the finished build once (every shard kept), and verifies the shards. Wall
# time and peak RSS of each step come from GNU time (/usr/bin/time -v).
#
#   scripts/data-import-scale.sh [WORKDIR]    (default /tmp/vlp-scale; needs ~5 GB)
set -euo pipefail
work=${1:-/tmp/vlp-scale}
workers=${WORKERS:-2}
vlp=${VLP_BIN:-}
if [ -z "$vlp" ]; then # build the working tree's binary, never a stale one
	vlp=build/bin/vlp
	go build -o "$vlp" ./cmd/vlp
fi
rm -rf "$work" && mkdir -p "$work"

step() { # name, command...
	local name=$1; shift
	/usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err"
	printf '%-8s wall %-10s peak RSS %8.0f MiB\n' "$name" \
		"$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$name.time")" \
		"$(awk '/Maximum resident set size/ {print $6/1024}' "$work/$name.time")"
}

step synth "$vlp" data synth --scale full --out "$work/src" --workers "$workers"
ls -l "$work/src/coco/annotations" "$work/src/vg" | grep json
step build "$vlp" shard build --coco "$work/src/coco" --vg "$work/src/vg" --out "$work/shards" --shard-size 5000 --workers "$workers"
grep -a '^index' "$work/build.err"
step resume "$vlp" shard build --coco "$work/src/coco" --vg "$work/src/vg" --out "$work/shards" --shard-size 5000 --workers "$workers"
step verify "$vlp" shard verify "$work/shards"
cat "$work/build.out"
head -1 "$work/resume.out"
tail -1 "$work/verify.out"
du -sh "$work/shards"
