#!/usr/bin/env bash
# The test run behind `make test` (after ruff and mypy): starts a throw-away Neo4j 5.26 on a free
# port with a temporary data folder, runs the whole pytest suite against it, and stops it again,
# also when tests fail or the run is interrupted. Extra arguments go to pytest.
#
#   bash tools/run_tests.sh                 # everything, Neo4j included
#   bash tools/run_tests.sh tests/store -x  # a part
#   PLANTGRAPH_SKIP_NEO4J=1 bash tools/run_tests.sh   # no Java here: Neo4j tests skipped, loudly
#
# If Neo4j cannot start, the run fails with the reason: the Neo4j tests are never skipped silently.
# Exit status: pytest's; "no tests collected" (5) counts as a failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
PY="$ROOT/.venv/bin/python"
PYTEST="$ROOT/.venv/bin/pytest"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

[[ -x "$PYTEST" ]] || { echo "run_tests.sh: $PYTEST missing; run 'make venv' first" >&2; exit 1; }

finish() {
    local rc="$1"
    if [[ "$rc" -eq 5 ]]; then
        echo "run_tests.sh: FAILED: pytest collected no tests (exit 5)" >&2
    fi
    exit "$rc"
}

if [[ "${PLANTGRAPH_SKIP_NEO4J:-}" == "1" ]]; then
    cat >&2 <<'EOF'
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  SKIP: PLANTGRAPH_SKIP_NEO4J=1 is set, so NO Neo4j server is started and every Neo4j test is   !!
!!  SKIPPED. This run does not test the Neo4j backend. CI never sets this variable.              !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
EOF
    "$PYTEST" "$@"  # testpaths = tests (pyproject)
    finish $?
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/plantgraph-test-neo4j.XXXXXX")" || exit 1
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export PLANTGRAPH_NEO4J_HOME="$TMP/server"
export PLANTGRAPH_NEO4J_PORT="$PORT"
NEO4J_PASSWORD="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')"
export NEO4J_PASSWORD
export NEO4J_USER=neo4j
unset NEO4J_DATABASE PLANTGRAPH_SKIP_NEO4J

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    echo "run_tests.sh: stopping the test Neo4j" >&2
    bash "$ROOT/tools/neo4j.sh" down || echo "run_tests.sh: WARNING: could not stop the test Neo4j (home $PLANTGRAPH_NEO4J_HOME)" >&2
    rm -rf "$TMP"
    finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "run_tests.sh: starting a test Neo4j 5.26 on 127.0.0.1:$PORT (data in $TMP)" >&2
if ! URI_LINE="$(bash "$ROOT/tools/neo4j.sh" up | grep '^NEO4J_URI=')"; then
    echo "run_tests.sh: FAILED: the test Neo4j did not start (reason above). Install Java 17+ and Maven," >&2
    echo "run_tests.sh: or set PLANTGRAPH_SKIP_NEO4J=1 to skip the Neo4j tests knowingly." >&2
    exit 1
fi
export NEO4J_URI="${URI_LINE#NEO4J_URI=}"

# The same schema `plantgraph neo4j init` creates (constraints, indexes), once for the run.
if ! "$PY" -c '
import os
from store.neo4j_store import Neo4jStore
s = Neo4jStore(os.environ["NEO4J_URI"], os.environ["NEO4J_USER"], os.environ["NEO4J_PASSWORD"], require_schema=False)
s.init_schema()
s.close()
'; then
    echo "run_tests.sh: FAILED: could not create the Neo4j schema on the test server" >&2
    exit 1
fi

echo "run_tests.sh: NEO4J_URI=$NEO4J_URI; running pytest" >&2
"$PYTEST" "$@"  # testpaths = tests (pyproject)
exit $?
