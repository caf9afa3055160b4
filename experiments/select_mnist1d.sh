#!/usr/bin/env sh
# RL-KD on MNIST-1D with the default pool (cnn, resnet, mlp_wide, cnn_noisy), against the uniform
# average and the student alone, 5 seeds. About a minute on 2 CPU cores once the pool exists
# (`mtkd select train` trains the default pool first if needed, about another minute).
#
# Measured (CPU, 5 seeds, test accuracy %, mean ± std; see the issue-3 report):
#   rl 63.10 ± 1.03   uniform 64.80 ± 1.36   none 59.98 ± 1.24
# The selector, rewarded by the validation-loss gain over 2-epoch episodes from a student warmed
# up for 10 epochs, learns to keep mlp_wide and cnn_noisy and to skip cnn and resnet: a short
# horizon reward prefers softer teachers. `weighted:0,0,1,1` (that fixed choice) gives 63.10 ± 1.26.
set -eu
OUT=${1:-runs/select_mnist1d}
mtkd select train --procedure episodic --dataset mnist1d --out "$OUT" \
  --warmup-epochs 10 --episode-epochs 2 --episodes 50 --num-envs 8 \
  --reward val_loss_gain --policy-arch logistic --baseline leave_one_out \
  --seeds 5 --compare uniform --compare none
