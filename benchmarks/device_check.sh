#!/usr/bin/env bash
# The GPU check, run from the repository root on a machine with an NVIDIA GPU and a Python that
# already has jax (CUDA), torch, flax, equinox, optax, chex, pytest, pytest-xdist and hypothesis:
#   1. versions and device; 2. the test suite (parity with torch on the CPU, JAX on the GPU);
#   3. every convolution lowering forced, on the GPU; 4. the quick benchmark, torch on CUDA.
# Logs go to $OUT (default /tmp/device_check). Each stage has a time cap (seconds) so that the
# whole check fits one lease: TEST_S, LOWERINGS_S, BENCH_S (0 skips a stage); TESTS picks the test
# files, BENCH_ARGS the benchmark's options.
set -u
OUT=${OUT:-/tmp/device_check}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
t0=$(date +%s)

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import jax, torch, flax, equinox, optax; print('jax', jax.__version__, jax.devices(), '| torch',
torch.__version__, torch.cuda.is_available(), '| flax', flax.__version__, '| equinox', equinox.__version__)"
} 2>&1 | tee "$OUT/env.txt"

# The notebooks need jupyter/nbclient, which the device image lacks; everything else runs.
[ "${TEST_S:-300}" != 0 ] && timeout "${TEST_S:-300}" $PY -m pytest -v -n "${WORKERS:-12}" -p no:cacheprovider ${TESTS:-tests} \
  --ignore=tests/test_notebooks.py -o addopts="--strict-markers" >"$OUT/tests.txt" 2>&1
echo "tests: rc $? after $(( $(date +%s) - t0 )) s"
grep -E "^(FAILED|ERROR)|\[gw[0-9]+\] .*(FAILED|ERROR)" "$OUT/tests.txt" | sed 's/^\[gw[0-9]*\] \[ *[0-9]*%\] //' | sort -u | head -40
tail -n 3 "$OUT/tests.txt"

[ "${LOWERINGS_S:-90}" != 0 ] && timeout "${LOWERINGS_S:-90}" $PY -m benchmarks.conv_lowerings 2>&1 | tee "$OUT/lowerings.txt"
echo "lowerings: after $(( $(date +%s) - t0 )) s"

timeout "${BENCH_S:-200}" $PY -m benchmarks.run ${BENCH_ARGS:---quick --rounds 2 --iters 30} --device gpu --output "$OUT/results_gpu.md" \
  >"$OUT/bench.txt" 2>&1
echo "bench: rc $? after $(( $(date +%s) - t0 )) s"
cat "$OUT/bench.txt" | grep -v "^\[" | tail -60
