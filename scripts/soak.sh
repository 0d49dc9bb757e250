#!/usr/bin/env bash
# The seeded fault simulation (tests/sync/test_convergence.py) over seeds 1..SOAK_SEEDS, split
# into SOAK_JOBS contiguous seed ranges, each run by its own pytest process (the simulation is
# single-threaded: one process keeps about one core busy). Every process has its own temporary
# directory and its own template databases. Output: one line per seed (`-v`), prefixed with the
# job's seed range; exit status 1 if any job failed.
#
#   SOAK_SEEDS=1000 SOAK_JOBS=2 SOAK_ENGINE=sqlite scripts/soak.sh
#
# SOAK_ENGINE: sqlite, postgresql (needs AGENTDESK_TEST_DATABASE_URL) or empty for every engine
# configured. PY: the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SOAK_SEEDS:-100}
JOBS=${SOAK_JOBS:-1}
ENGINE=${SOAK_ENGINE:-}
PY=${PY:-.venv/bin/python}
case "$SEEDS$JOBS" in *[!0-9]*) echo "SOAK_SEEDS and SOAK_JOBS must be whole numbers" >&2; exit 2 ;; esac
[ "$JOBS" -ge 1 ] && [ "$SEEDS" -ge "$JOBS" ] \
    || { echo "need 1 <= SOAK_JOBS <= SOAK_SEEDS (got $JOBS jobs, $SEEDS seeds)" >&2; exit 2; }
case "$ENGINE" in
    "") FILTER="simulation_converges" ;;
    sqlite | postgresql) FILTER="simulation_converges and $ENGINE" ;;
    *) echo "SOAK_ENGINE must be sqlite, postgresql or empty, not '$ENGINE'" >&2; exit 2 ;;
esac
if [ "$ENGINE" = postgresql ] && [ -z "${AGENTDESK_TEST_DATABASE_URL:-}" ]; then
    echo "SOAK_ENGINE=postgresql needs AGENTDESK_TEST_DATABASE_URL" >&2
    exit 2
fi

BASE=$(mktemp -d /tmp/agentdesk-soak.XXXXXX)
trap 'rm -rf "$BASE"' EXIT
echo "soak: seeds 1-$SEEDS, ${ENGINE:-every configured engine}, $JOBS job(s); started $(date -u +%FT%TZ)"
PIDS=()
for ((job = 0; job < JOBS; job++)); do
    first=$((job * SEEDS / JOBS + 1))
    last=$(((job + 1) * SEEDS / JOBS))
    (
        set -o pipefail
        AGENTDESK_SIM_SEED="$first-$last" QT_QPA_PLATFORM=offscreen "$PY" -m pytest -v \
            -p no:cacheprovider --basetemp "$BASE/job$job" --durations=5 \
            tests/sync/test_convergence.py -k "$FILTER" 2>&1 | sed -u "s/^/[seeds $first-$last] /"
    ) &
    PIDS+=("$!")
done
FAILED=0
for pid in "${PIDS[@]}"; do wait "$pid" || FAILED=1; done
echo "soak: finished $(date -u +%FT%TZ): $([ "$FAILED" = 0 ] && echo "every job passed" || echo "a job FAILED")"
exit "$FAILED"
