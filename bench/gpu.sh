#!/usr/bin/env bash
# One script for a GPU machine (H100): the tests marked `gpu`, then the trainer-step benchmark on
# SmolLM2-135M in bf16. Meant to finish well under 8 minutes. Usage: bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
echo "== pytest -m gpu"
"$PY" -m pytest -m gpu tests/core -q -p no:cacheprovider
echo "== trainer step: tiny model, bf16, cuda"
"$PY" bench/trainer_step.py --device cuda --dtype bfloat16 --steps 4 --batch-size 8
echo "== trainer step: SmolLM2-135M-Instruct, bf16, cuda"
"$PY" bench/trainer_step.py --model builtin:smollm2-135m-instruct --device cuda \
  --dtype bfloat16 --steps 4 --batch-size 8 --prompt-length 512 --new-tokens 64
echo "== trainer step: SmolLM2-135M-Instruct, bf16, cuda, vLLM rollouts (skipped without vllm)"
if "$PY" -c "import vllm" 2>/dev/null; then
  "$PY" bench/trainer_step.py --model builtin:smollm2-135m-instruct --device cuda \
    --dtype bfloat16 --steps 4 --batch-size 8 --prompt-length 512 --new-tokens 64 \
    --rollout-engine vllm --presets sft gkd unisd_star
fi
