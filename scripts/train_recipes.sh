#!/usr/bin/env bash
# Train the colorization recipes at equal compute (same steps, batch, data, schedule), one after
# another, resumably: a recipe whose run exists is resumed, a finished one is skipped. The list
# is re-read before each recipe, so recipes can be appended while the queue runs.
#   bash scripts/train_recipes.sh [QUEUE_FILE]   (default: configs/colorize/recipes/queue.txt)
# Each line of the queue: a config path. Extra overrides for all: RECIPE_OVERRIDES env var.
set -euo pipefail
cd "$(dirname "$0")/.."
queue=${1:-configs/colorize/recipes/queue.txt}
runs=${RECIPE_RUNS:-runs/recipes}
overrides=${RECIPE_OVERRIDES:-"train.steps=1000 loss.pretrain_steps=300 train.lr_schedule=linear_decay train.val_every=500 train.sample_every=500 train.ckpt_every=50"}
done_list=""
while true; do
  next=""
  while read -r cfg; do
    [[ -z "$cfg" || "$cfg" == \#* ]] && continue
    [[ " $done_list " == *" $cfg "* ]] && continue
    next=$cfg; break
  done < "$queue"
  [[ -z "$next" ]] && break
  name=$(basename "$next" .yaml)
  run=$(ls -d "$runs"/*-"$name" 2>/dev/null | tail -1 || true)
  if [[ -n "$run" && -f "$run/model/card.json" ]]; then
    echo "== $name: done ($run)"
  elif [[ -n "$run" && -n "$(ls "$run"/checkpoints/*.pt 2>/dev/null)" ]]; then
    echo "== $name: resuming $run"; .venv/bin/prism train --resume "$run" --no-progress
  else
    echo "== $name: starting"
    # shellcheck disable=SC2086
    .venv/bin/prism train --config "$next" --runs-dir "$runs" --no-progress name="$name" $overrides
  fi
  done_list="$done_list $next"
done
echo "== queue finished"
