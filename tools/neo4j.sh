#!/usr/bin/env bash
# Local Neo4j 5.26 (community, Bolt only) for plantgraph: build the launcher, start, stop, status.
#
#   bash tools/neo4j.sh up       build tools/neo4j-server if needed, start in the background, wait for
#                                `RETURN 1` through the Python driver, print NEO4J_URI=...
#   bash tools/neo4j.sh down     stop the server started by `up` (its own pid file), wait for it to exit
#   bash tools/neo4j.sh status   running or not, and where
#   bash tools/neo4j.sh env      print export lines (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD) for `eval`
#   bash tools/neo4j.sh build    only build the launcher (first run fetches Neo4j from Maven Central)
#
# Knobs (environment):
#   PLANTGRAPH_DATA            project data folder (default ./data); the server lives in $PLANTGRAPH_DATA/neo4j
#   PLANTGRAPH_NEO4J_HOME      server folder (data/, logs/, pid file); overrides the above
#   PLANTGRAPH_NEO4J_PORT      Bolt port on 127.0.0.1 (default 7687)
#   NEO4J_PASSWORD             password of user neo4j (set at every start); when unset, the value of
#                              plantgraph's settings (its NEO4J_PASSWORD default), so the CLI matches
#   PLANTGRAPH_NEO4J_HEAP      JVM heap (default 768m); PLANTGRAPH_NEO4J_PAGECACHE page cache (default 256m)
#   PLANTGRAPH_NEO4J_START_TIMEOUT  seconds to wait for the server (default 600: a busy 2-core machine is slow)
#   PLANTGRAPH_NEO4J_JAVA_OPTS extra JVM options (e.g. -XX:TieredStopAtLevel=1 for a faster start)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="$ROOT/tools/neo4j-server"
JAR="$MODULE/target/plantgraph-neo4j-server.jar"
PY="${PLANTGRAPH_PYTHON:-$ROOT/.venv/bin/python}"
DATA="${PLANTGRAPH_DATA:-$ROOT/data}"
HOME_DIR="${PLANTGRAPH_NEO4J_HOME:-$DATA/neo4j}"
PORT="${PLANTGRAPH_NEO4J_PORT:-7687}"
PIDFILE="$HOME_DIR/launcher.pid"
LOG="$HOME_DIR/launcher.log"
URI="bolt://127.0.0.1:$PORT"
TIMEOUT="${PLANTGRAPH_NEO4J_START_TIMEOUT:-600}"

say() { echo "neo4j.sh: $*" >&2; }
die() { echo "neo4j.sh: ERROR: $*" >&2; exit 1; }

running_pid() {
    # The pid from our pid file, when that process is alive and is our launcher.
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    grep -q "dev.plantgraph.neo4j.Launcher" "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

password() {
    # One source of truth: NEO4J_PASSWORD, else plantgraph's settings (the same value the CLI and
    # the API will use), so `make neo4j-up` followed by any plantgraph command just works.
    if [[ -n "${NEO4J_PASSWORD:-}" ]]; then
        printf '%s' "$NEO4J_PASSWORD"
        return
    fi
    (cd "$ROOT" && "$PY" -c 'from config.settings import Settings; print(Settings().neo4j_password, end="")')
}

build() {
    command -v java >/dev/null 2>&1 || die "java not found: install a Java 17+ runtime (or set PLANTGRAPH_SKIP_NEO4J=1 for make test)"
    command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven 3.8+ to build tools/neo4j-server"
    local stale=0
    [[ -f "$JAR" && -d "$MODULE/target/lib" ]] || stale=1
    if [[ $stale -eq 0 ]]; then
        if [[ "$MODULE/pom.xml" -nt "$JAR" ]] || [[ -n "$(find "$MODULE/src" -newer "$JAR" -type f -print -quit)" ]]; then
            stale=1
        fi
    fi
    [[ $stale -eq 1 ]] || return 0
    mkdir -p "$MODULE/target"
    (
        # one build at a time (make test and make neo4j-up may race)
        flock 9
        say "building the Neo4j launcher (first run downloads Neo4j 5.26 from Maven Central into ~/.m2)"
        if ! mvn -q -B -o -f "$MODULE/pom.xml" package >"$MODULE/target/build.log" 2>&1; then
            mvn -q -B -f "$MODULE/pom.xml" package >"$MODULE/target/build.log" 2>&1 \
                || { tail -n 30 "$MODULE/target/build.log" >&2; die "maven build of tools/neo4j-server failed (log: $MODULE/target/build.log)"; }
        fi
    ) 9>"$MODULE/target/.build.lock"
}

# Waits until the driver can run RETURN 1 or the process dies; prints the reason on failure.
wait_ready() {
    local pid="$1" pw="$2"
    NEO4J_PASSWORD="$pw" "$PY" - "$URI" "$pid" "$TIMEOUT" <<'PYEOF'
import os, sys, time
import neo4j
from neo4j.exceptions import DriverError, Neo4jError

uri, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
last = "no answer yet"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        print(f"launcher process {pid} exited before Neo4j answered", file=sys.stderr)
        sys.exit(2)
    try:
        with neo4j.GraphDatabase.driver(uri, auth=("neo4j", os.environ["NEO4J_PASSWORD"])) as d:
            with d.session() as s:  # a plain session: no retry loop, no retry log lines
                s.run("RETURN 1 AS ok").consume()
        sys.exit(0)
    except (Neo4jError, DriverError, OSError) as e:
        # Auth and 'database unavailable' errors are expected for a moment: the launcher sets
        # the password right after the DBMS starts, and the default database comes up last.
        last = f"{type(e).__name__}: {e}"
    time.sleep(1.0)
print(f"Neo4j did not answer RETURN 1 at {uri} within {timeout:.0f}s (last: {last})", file=sys.stderr)
sys.exit(3)
PYEOF
}

port_free() {
    "$PY" - "$PORT" <<'PYEOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the JVM; TIME_WAIT is no conflict
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    print(f"port {sys.argv[1]} on 127.0.0.1 is already in use ({e.strerror})", file=sys.stderr)
    sys.exit(1)
finally:
    s.close()
PYEOF
}

up() {
    local pid pw
    if pid="$(running_pid)"; then
        say "already running (pid $pid, home $HOME_DIR)"
        echo "NEO4J_URI=$(cat "$HOME_DIR/uri" 2>/dev/null || echo "$URI")"
        return 0
    fi
    [[ -x "$PY" ]] || die "$PY not found: run 'make venv' first"
    build
    port_free || die "cannot start Neo4j: port $PORT is taken (set PLANTGRAPH_NEO4J_PORT)"
    mkdir -p "$HOME_DIR"
    pw="$(password)"
    [[ ${#pw} -ge 8 ]] || die "NEO4J_PASSWORD must have at least 8 characters (Neo4j's minimum)"
    say "starting Neo4j 5.26 on $URI (home $HOME_DIR, log $LOG)"
    # setsid: its own session, so a Ctrl-C in the calling terminal does not kill the server.
    NEO4J_PASSWORD="$pw" PLANTGRAPH_NEO4J_PORT="$PORT" \
        PLANTGRAPH_NEO4J_PAGECACHE="${PLANTGRAPH_NEO4J_PAGECACHE:-256m}" \
        setsid java -Xms256m -Xmx"${PLANTGRAPH_NEO4J_HEAP:-768m}" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
        ${PLANTGRAPH_NEO4J_JAVA_OPTS:-} \
        -Dfile.encoding=UTF-8 \
        -cp "$JAR:$MODULE/target/lib/*" dev.plantgraph.neo4j.Launcher "$HOME_DIR" \
        >"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    if ! wait_ready "$pid" "$pw"; then
        say "last lines of $LOG:"
        tail -n 25 "$LOG" >&2 || true
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait_exit "$pid" 60 || kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$PIDFILE"
        die "Neo4j did not start (see above)"
    fi
    echo "$URI" >"$HOME_DIR/uri"
    say "ready (pid $pid)"
    echo "NEO4J_URI=$URI"
    echo "NEO4J_USER=neo4j"
    [[ -n "${NEO4J_PASSWORD:-}" ]] || say "password: plantgraph's default NEO4J_PASSWORD (set NEO4J_PASSWORD for anything but local development)"
}

wait_exit() {
    local pid="$1" secs="$2" i
    for ((i = 0; i < secs * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    return 1
}

down() {
    local pid
    if ! pid="$(running_pid)"; then
        say "not running (no live launcher in $PIDFILE)"
        rm -f "$PIDFILE"
        return 0
    fi
    say "stopping Neo4j (pid $pid)"
    kill -TERM "$pid"
    if ! wait_exit "$pid" 120; then
        say "still running after 120 s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        wait_exit "$pid" 10 || die "pid $pid did not exit"
    fi
    rm -f "$PIDFILE"
    say "stopped"
}

status() {
    local pid
    if pid="$(running_pid)"; then
        echo "running pid=$pid uri=$(cat "$HOME_DIR/uri" 2>/dev/null || echo "$URI") home=$HOME_DIR"
    else
        echo "stopped home=$HOME_DIR"
        return 3
    fi
}

env_lines() {
    local uri="$URI"
    [[ -f "$HOME_DIR/uri" ]] && uri="$(cat "$HOME_DIR/uri")"
    printf 'export NEO4J_URI=%q\nexport NEO4J_USER=neo4j\nexport NEO4J_PASSWORD=%q\n' "$uri" "$(password)"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_lines ;;
    build) build ;;
    *) echo "usage: bash tools/neo4j.sh up|down|status|env|build" >&2; exit 2 ;;
esac
