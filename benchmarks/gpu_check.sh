#!/usr/bin/env bash
# One prepared check of rtseg on a GPU machine, in one call of at most 8 minutes:
#   bash benchmarks/gpu_check.sh [--out DIR] [--wheels DIR] [--data DIR] [--allow-cpu] [--quick]
#   bash benchmarks/gpu_check.sh --plan [--wheels DIR] [--data DIR] [--limit-mib 60] | --slim | --restore
# Prints the GPU and versions, runs the `gpu` tests, times the torch CUDA backend alone, NVDEC
# decode and NVENC encode at 960x540 and 1920x1080, `rtseg run` end to end with them, checks the
# ids against the CPU, exercises the cuda-python memory layer, and TensorRT where it imports.
# --plan: the bytes the device call carries (benchmarks/gpu_carry.py), status 1 above the limit;
# --slim / --restore: set aside / put back what the check does not need (the ONNX packages).
# Writes OUT/gpu_check.json and OUT/gpu_check.log (OUT: --out, else $OUT, else ./gpu_check_out).
# Wheels brought along (PyAV, opencv-python-headless, click, ...; no network there) are
# installed from --wheels DIR (default: ./wheels if present) with pip --no-index into a
# temporary folder put on PYTHONPATH: the machine's own environment is not changed.
# --allow-cpu: the dry mode without a GPU (GPU sections skipped with the reason), for CI.
set -u -o pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT:-}"
WHEELS=""
PASS=()
CARRY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT_DIR="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --data|--budget|--only) PASS+=("$1" "$2"); shift 2 ;;
    --allow-cpu|--quick) PASS+=("$1"); shift ;;
    --plan|--slim|--restore) CARRY=("$1" "${CARRY[@]+"${CARRY[@]}"}"); shift ;;
    --limit-mib) CARRY+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
if [ ${#CARRY[@]} -gt 0 ]; then
  case "${CARRY[0]}" in
    --plan)
      DATA_DIR=""
      for ((i = 0; i < ${#PASS[@]}; i++)); do [ "${PASS[$i]}" = "--data" ] && DATA_DIR="${PASS[$((i + 1))]}"; done
      exec "$PYTHON" "$REPO/benchmarks/gpu_carry.py" "${CARRY[@]}" --repo "$REPO" \
        ${WHEELS:+--wheels "$WHEELS"} ${DATA_DIR:+--data "$DATA_DIR"} ;;
    *) exec "$PYTHON" "$REPO/benchmarks/gpu_carry.py" "${CARRY[@]}" --repo "$REPO" ;;
  esac
fi
OUT_DIR="${OUT_DIR:-$PWD/gpu_check_out}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
exec > >(tee "$OUT_DIR/gpu_check.log") 2>&1

echo "== rtseg gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
echo "== repo $REPO, out $OUT_DIR, python $PYTHON ($("$PYTHON" --version 2>&1))"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || true
else
  echo "== no nvidia-smi (no NVIDIA driver)"
fi

if [ -z "$WHEELS" ] && [ -d "$REPO/wheels" ]; then WHEELS="$REPO/wheels"; fi
if [ -n "$WHEELS" ]; then
  DEPS="$(mktemp -d /tmp/rtseg-gpu-check-deps.XXXXXX)"
  trap 'rm -rf "$DEPS"' EXIT
  echo "== installing the wheels in $WHEELS into $DEPS (pip --no-index)"
  shopt -s nullglob
  wheels=("$WHEELS"/*.whl)
  if [ ${#wheels[@]} -gt 0 ]; then
    "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" --target "$DEPS" "${wheels[@]}" \
      || "$PYTHON" -m pip install -q --no-index --no-deps --target "$DEPS" "${wheels[@]}" \
      || echo "== some wheels did not install (see above)"
    echo "== installed: $(ls "$DEPS" | grep -v 'dist-info$' | tr '\n' ' ')"
  else
    echo "== no .whl files in $WHEELS"
  fi
  export PYTHONPATH="$DEPS${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

cd "$REPO"
timeout --kill-after=10 420 "$PYTHON" "$REPO/benchmarks/gpu_check.py" --out "$OUT_DIR" "${PASS[@]}"
status=$?
[ $status -eq 124 ] && echo "== gpu_check.py ran past 420 s and was stopped"
echo "== done (status $status): $OUT_DIR/gpu_check.json, $OUT_DIR/gpu_check.log"
exit $status
