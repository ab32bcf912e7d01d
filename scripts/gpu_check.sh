#!/usr/bin/env bash
# The one prepared GPU check of tokfilter (docs/gpu.md "Measuring the GPU path"). Two modes:
#
#   bash scripts/gpu_check.sh --prepare     on the development machine (no GPU needed), in the checkout that the
#                                           device tool sends: ignores and fills .whl/ (pyahocorasick and zstandard
#                                           wheels for Python 3.12, missing on the device image) and data/gpu-smoke/
#                                           (a subset of ../shared/data corpora, about 6 MB), and prints the call.
#   bash scripts/gpu_check.sh               on the GPU machine, from the repository root, with $OUT set: installs the
#                                           package without dependencies, then runs, each under its own time limit,
#                                             1. pytest -m gpu tests/gpu -rs            -> $OUT/pytest.log
#                                             2. python benchmarks/gpu_mfu.py           -> $OUT/gpu_mfu.json
#                                             3. tokfilter run experiments/gpu-smoke.toml -> $OUT/gpu-smoke-*.{json,html}
#                                           A failing or timed-out step is recorded in $OUT/status.json and the next
#                                           step still runs. Everything printed also goes to $OUT/gpu_check.log.
#
# Device call (the device tool): carry [".whl", "data/gpu-smoke"], command `bash scripts/gpu_check.sh`,
# timeout_s 600. Step limits (seconds) can be changed with GPU_CHECK_TESTS_S, GPU_CHECK_BENCH_S, GPU_CHECK_SMOKE_S;
# GPU_CHECK_STEPS (default "tests bench smoke") picks the steps, e.g. GPU_CHECK_STEPS=smoke for a rerun of one;
# GPU_CHECK_NO_INSTALL=1 skips the pip install (a shared environment where tokfilter is importable already).
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
PY="${PYTHON:-python3}"
SMOKE_DATA="data/gpu-smoke"
# role -> files of ../shared/data/corpora copied into data/gpu-smoke/<role>/ (experiments/gpu-smoke.toml reads them)
SMOKE_FILES="forget:pubmedqa_abstracts.jsonl.gz forget:patient_reviews.jsonl.gz retain:biology_textbooks.jsonl.gz
general:bbc_news.jsonl.gz general:brown.jsonl.gz"

find_shared_data() {
    for d in "${TOKFILTER_SHARED_DATA:-}" "$ROOT/shared/data" "$ROOT/../shared/data"; do
        if [ -n "$d" ] && [ -d "$d/corpora" ]; then echo "$d"; return 0; fi
    done
    return 1
}

copy_smoke_data() {
    local shared missing=0
    if ! shared="$(find_shared_data)"; then
        echo "no shared data found (shared/data, ../shared/data or TOKFILTER_SHARED_DATA)"
        return 1
    fi
    for entry in $SMOKE_FILES; do
        role="${entry%%:*}"; file="${entry#*:}"
        mkdir -p "$SMOKE_DATA/$role"
        cp -f "$shared/corpora/$file" "$SMOKE_DATA/$role/" || missing=1
    done
    echo "copied the smoke corpora from $shared into $SMOKE_DATA ($(du -sh "$SMOKE_DATA" | cut -f1))"
    return $missing
}

smoke_data_present() {
    for entry in $SMOKE_FILES; do
        [ -f "$SMOKE_DATA/${entry%%:*}/${entry#*:}" ] || return 1
    done
    return 0
}

if [ "${1:-}" = "--prepare" ]; then
    exclude="$(git rev-parse --git-path info/exclude)"
    for pattern in /.whl/ /data/gpu-smoke/; do
        grep -qxF "$pattern" "$exclude" 2>/dev/null || echo "$pattern" >> "$exclude"
    done
    mkdir -p .whl
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
        pyahocorasick==2.3.1 zstandard==0.25.0 || echo "WARNING: wheel download failed (see above)"
    copy_smoke_data || echo "WARNING: smoke data incomplete; the smoke step will be skipped on the device"
    ls -la .whl
    echo
    echo "Now call the device tool's run with:"
    echo "  command: bash scripts/gpu_check.sh    carry: [\".whl\", \"data/gpu-smoke\"]    timeout_s: 600"
    echo "(the device tool sends the checkout the session was started in: run --prepare there)"
    exit 0
fi

# ---------------------------------------------------------------- on the GPU machine
OUT="${OUT:-$ROOT/out/gpu-check}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
STATUS="$OUT/status.json"
export PYTHONUNBUFFERED=1
export TOKFILTER_GPU_OUT="$OUT"
STEPS="${GPU_CHECK_STEPS:-tests bench smoke}"
T0=$(date +%s)
declare -a RECORDS=()

log() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }

record() {  # name rc seconds note
    RECORDS+=("\"$1\": {\"rc\": $2, \"seconds\": $3, \"note\": \"$4\"}")
    (IFS=,; echo "{${RECORDS[*]}}") > "$STATUS"
}

run_step() {  # name limit_seconds command...
    local name="$1" limit="$2"; shift 2
    local start rc note
    start=$(date +%s)
    log "step $name: start (limit ${limit}s): $*"
    timeout --signal=TERM --kill-after=15 "$limit" "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    note="ok"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then note="timed out after ${limit}s"; elif [ "$rc" -ne 0 ]; then note="failed"; fi
    record "$name" "$rc" "$(( $(date +%s) - start ))" "$note"
    log "step $name: $note (rc $rc, $(( $(date +%s) - start ))s)"
}

log "host $(hostname); $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not available')"
"$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" 2>&1 | tee -a "$LOG"

# install: wheels carried in .whl/ (missing small dependencies), then the package itself without dependencies
start=$(date +%s)
install_note="ok"
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        >>"$LOG" 2>&1 && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" || install_note="wheels failed"
fi
if [ -n "${GPU_CHECK_NO_INSTALL:-}" ]; then
    install_note="$install_note; package not installed (GPU_CHECK_NO_INSTALL)"
elif ! "$PY" -m pip install -q --no-deps --no-build-isolation -e . >>"$LOG" 2>&1; then
    install_note="$install_note; pip -e failed, using PYTHONPATH=src"
    export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
fi
TOKFILTER=(tokfilter)
command -v tokfilter >/dev/null 2>&1 || TOKFILTER=("$PY" -c "import sys; from tokfilter.cli import main; sys.exit(main())")
missing="$("$PY" - <<'EOF' 2>&1
import importlib.util
need = ["torch", "numpy", "tokenizers", "tiktoken", "safetensors", "pyarrow", "tqdm", "matplotlib", "sklearn",
        "ahocorasick", "zstandard", "pytest", "tokfilter"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)"
[ -n "$missing" ] && install_note="$install_note; missing: $missing"
record install 0 "$(( $(date +%s) - start ))" "$install_note"
log "install: $install_note"

if ! smoke_data_present; then
    copy_smoke_data 2>&1 | tee -a "$LOG"
fi

for step in $STEPS; do
    case "$step" in
        tests)
            run_step tests "${GPU_CHECK_TESTS_S:-130}" \
                bash -c "set -o pipefail; '$PY' -m pytest -m gpu tests/gpu -rs -v -p no:cacheprovider 2>&1 | tee '$OUT/pytest.log'"
            ;;
        bench)
            run_step bench "${GPU_CHECK_BENCH_S:-150}" \
                bash -c "set -o pipefail; '$PY' benchmarks/gpu_mfu.py --json-out '$OUT/gpu_mfu.json'"
            ;;
        smoke)
            if smoke_data_present; then
                smoke_dir="${GPU_SMOKE_DIR:-/tmp/gpu-smoke}"
                run_step smoke "${GPU_CHECK_SMOKE_S:-280}" "${TOKFILTER[@]}" run experiments/gpu-smoke.toml --out "$smoke_dir"
                for f in results.json report.html; do
                    [ -f "$smoke_dir/$f" ] && cp "$smoke_dir/$f" "$OUT/gpu-smoke-$f"
                done
            else
                record smoke -1 0 "skipped: no data in $SMOKE_DATA (run scripts/gpu_check.sh --prepare and carry it)"
                log "step smoke: skipped (no data in $SMOKE_DATA)"
            fi
            ;;
        *) log "unknown step $step (tests, bench, smoke)";;
    esac
done

log "done in $(( $(date +%s) - T0 ))s"
echo "== status ==" ; cat "$STATUS"; echo
[ -f "$OUT/gpu_mfu.json" ] && { echo "== gpu_mfu =="; cat "$OUT/gpu_mfu.json"; echo; }
[ -f "$OUT/pytest.log" ] && { echo "== pytest (tail) =="; tail -n 25 "$OUT/pytest.log"; }
[ -f "$OUT/gpu-smoke-results.json" ] && { echo "== smoke results (head) =="; head -c 3000 "$OUT/gpu-smoke-results.json"; echo; }
exit 0
