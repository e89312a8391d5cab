#!/usr/bin/env bash
# `make demo`: generate and load a demo plant, start the API and the UI, print URLs and keys.
# Stopping it (Ctrl-C) stops both servers.
set -euo pipefail
cd "$(dirname "$0")/.."
PG=.venv/bin/plantgraph
export PLANTGRAPH_DATA="${PLANTGRAPH_DATA:-$PWD/data}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
SCALE="${SCALE:-small}"
SEED="${SEED:-7}"
API_PORT="${API_PORT:-8000}"
UI_PORT="${UI_PORT:-8501}"
BACKEND="${BACKEND:-embedded}"
PLANT_DIR="$PLANTGRAPH_DATA/demo-plant-$SCALE-$SEED"
mkdir -p "$PLANTGRAPH_DATA"

pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  if [ "$BACKEND" = neo4j ]; then bash tools/neo4j.sh down || true; fi
}
trap cleanup EXIT INT TERM

if [ "$BACKEND" = neo4j ]; then
  eval "$(bash tools/neo4j.sh up | grep '^NEO4J_URI=')"
  export NEO4J_URI PLANTGRAPH_BACKEND=neo4j
  $PG neo4j init
fi

if [ ! -f "$PLANT_DIR/manifest.json" ]; then
  echo ">> generating the demo plant ($SCALE, seed $SEED)"
  $PG generate --scale "$SCALE" --seed "$SEED" --out "$PLANT_DIR"
fi
# The demo plant's data ends at its own "now"; analyses use that reference time, not the wall clock.
export PLANTGRAPH_NOW="${PLANTGRAPH_NOW:-$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['now'])" "$PLANT_DIR/truth.json")}"
echo ">> loading it (idempotent: a second run changes nothing); reference time $PLANTGRAPH_NOW"
$PG load "$PLANT_DIR"
$PG stats
echo ">> building the copilot index"
$PG index build

KEYS="$PLANTGRAPH_DATA/demo-keys.txt"
if [ ! -s "$KEYS" ]; then
  : > "$KEYS"
  PLANTS=$(python3 -c "import json,sys; print(','.join(json.load(open(sys.argv[1]))['plants']))" "$PLANT_DIR/manifest.json")
  for role in viewer analyst planner engineer approver admin; do
    key=$($PG keys create --user "demo-$role" --role "$role" --plants "$PLANTS" --quiet)
    echo "$role  $key" >> "$KEYS"
  done
  key=$($PG keys create --user "demo-approver-2" --role approver --plants "$PLANTS" --quiet)
  echo "approver2  $key" >> "$KEYS"
fi

$PG serve --host 127.0.0.1 --port "$API_PORT" & pids+=($!)
PLANTGRAPH_API_URL="http://127.0.0.1:$API_PORT" .venv/bin/streamlit run ui/app.py \
  --server.address 127.0.0.1 --server.port "$UI_PORT" --server.headless true \
  --browser.gatherUsageStats false & pids+=($!)

echo
echo "plantgraph demo is up"
echo "  API:  http://127.0.0.1:$API_PORT   (OpenAPI at /docs)"
echo "  UI:   http://127.0.0.1:$UI_PORT"
echo "  demo API keys (role  key), also in $KEYS:"
sed 's/^/    /' "$KEYS"
echo "Press Ctrl-C to stop both."
wait
