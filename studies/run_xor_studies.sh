#!/usr/bin/env bash
# Fig. 3(b) and 3(d, e) of arXiv 2402.08579 as pyosc studies: run (resumable), collect, plot.
set -euo pipefail
for s in studies/xor_size_sweep.toml studies/xor_init_sweep.toml; do
  pyosc study run "$s" --quiet
  pyosc study collect "$s"
  pyosc study plot "$s"
done
