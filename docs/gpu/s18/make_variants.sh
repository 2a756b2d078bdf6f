#!/bin/bash
# the Gluon-file variants of session 18's A/B calls (docs/gpu/s18/gluon_<v>.py, loaded by bench_share.py through
# GLUON_FILE), rebuilt from the package's fused_bimamba_gluon.py of the commit that added this script and the diffs
# here: 46af6cd (the kernels before the session, with unused CHAINS arguments), old_chains (those with the sums as
# chains), prologue, segpoly, prologue_segpoly, unrolled (the sums as 16 written-out terms, as measured in calls 1-7)
cd "$(dirname "$0")"
for v in 46af6cd old_chains prologue segpoly prologue_segpoly unrolled; do
  cp ../../../vim_backbone/ops/fused_bimamba_gluon.py gluon_$v.py && patch -s gluon_$v.py < gluon_$v.diff
done
