#!/bin/bash
# the Gluon-file variants of session 18's A/B calls (docs/gpu/s18/gluon_<v>.py, loaded by bench_share.py through
# GLUON_FILE), rebuilt from a base file and the diffs here: 46af6cd (the kernels before the session, with unused
# CHAINS arguments), old_chains (those with the sums as chains), prologue, segpoly, prologue_segpoly, unrolled (the
# sums as 16 written-out terms, as measured in calls 1-7). The diffs apply to vim_backbone/ops/fused_bimamba_gluon.py
# as of the commit that last changed them (git log -1 -- docs/gpu/s18/gluon_unrolled.diff); after later changes to
# that file, pass its version of then: bash make_variants.sh <(git show <commit>:vim_backbone/ops/fused_bimamba_gluon.py)
set -e
base=$(mktemp)
cat "${1:-$(dirname "$0")/../../../vim_backbone/ops/fused_bimamba_gluon.py}" > "$base"
cd "$(dirname "$0")"
for v in 46af6cd old_chains prologue segpoly prologue_segpoly unrolled; do
  cp "$base" gluon_$v.py && patch -s gluon_$v.py < gluon_$v.diff
done
rm -f "$base"
