#!/usr/bin/env bash
# Table 2 of arXiv 2402.08579 (best two architectures): digits, paper protocol (beta 0.1, SGD lr 0.01,
# batch 30 per class with replacement, M_init 1, 2000 iterations, test accuracy every 5 iterations).
# Usage: studies/xy_digits.sh  (about 1.5 h on 2 cores; logs and NetCDF under studies/results/xy_digits/)
set -euo pipefail
out=studies/results/xy_digits
mkdir -p "$out"
pyosc train digits --arch all-to-all:85 --out "$out/all-to-all-85.nc" > "$out/all-to-all-85.log" 2>&1 &
pyosc train digits --arch layered:64,200,10 --out "$out/layered-64-200-10.nc" > "$out/layered-64-200-10.log" 2>&1 &
wait
python studies/plot_xy_digits.py "$out"
