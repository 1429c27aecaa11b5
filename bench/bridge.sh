#!/usr/bin/env bash
# Reproduces the "Wazuh bridge" figures of BENCHMARKS.md. It times custom-iocwatch per
# alert, from process start to the message on the queue socket. The anchor beside it is
# starting python3 and importing `requests`, which the usual Python integration pays
# before it does any work. hyperfine times all commands in one invocation; the ratio
# uses medians, because other load on the machine shows up as outliers in the means.
#
# A small Python server on 127.0.0.1 answers MISP's attributes/restSearch with one
# matching attribute. It also drains a Unix datagram socket in place of Wazuh's queue.
# The alert is the file integrity fixture of crates/bridge/tests/fixtures/alerts.
#
# Environment: BENCH_DIR (scratch folder, default /tmp/iocwatch-bench/bridge), RUNS
# (default 300), PYTHON (the interpreter of the anchor, default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bench=${BENCH_DIR:-/tmp/iocwatch-bench/bridge}
runs=${RUNS:-300}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
binary=$CARGO_TARGET_DIR/release/custom-iocwatch

need_tools() {
    if ! command -v hyperfine >/dev/null; then
        if [ "$(id -u)" != 0 ]; then
            echo "bench/bridge.sh: hyperfine missing (install it with apt-get as root)" >&2
            exit 2
        fi
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine
    fi
    python=${PYTHON:-python3}
    if ! "$python" -c 'import requests' 2>/dev/null; then
        if [ "$(id -u)" != 0 ]; then
            echo "bench/bridge.sh: $python cannot import requests (apt-get install python3-requests)" >&2
            exit 2
        fi
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-requests
        python=/usr/bin/python3
    fi
    # Time the interpreter itself, not a version manager's wrapper script in front of it.
    python=$("$python" -c 'import sys; print(sys.executable)')
}

write_server() {
    cat >"$bench/server.py" <<'EOF'
import json, os, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
KEY = sys.argv[2]
ATTRIBUTE = {
    "id": "12346", "event_id": "1338", "category": "Payload delivery", "type": "sha256",
    "value": SHA256, "to_ids": True, "uuid": "5f2f8a7c-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
    "deleted": False, "comment": "",
    "Event": {"id": "1338", "info": "Benchmark event", "threat_level_id": "1",
              "uuid": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"},
    "Tag": [{"id": "1", "name": "tlp:green"}],
}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.headers.get("Authorization") != KEY:
            status, answer = 403, {"name": "Authentication failed", "message": "", "url": self.path}
        else:
            hits = [ATTRIBUTE] if body.get("value") == SHA256 else []
            status, answer = 200, {"response": {"Attribute": hits}}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

def drain(path):
    if os.path.exists(path):
        os.unlink(path)
    queue = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    queue.bind(path)
    count = 0
    while True:
        queue.recv(70000)
        count += 1
        with open(path + ".count", "w") as f:
            f.write(str(count))

threading.Thread(target=drain, args=(sys.argv[1],), daemon=True).start()
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
}

need_tools
mkdir -p "$bench"
cargo build --release -p bridge
write_server

key=BenchmarkKey0000000000000000000000000000
"$python" "$bench/server.py" "$bench/queue" "$key" >"$bench/port" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$bench/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$bench/port")"

cp crates/bridge/tests/fixtures/alerts/fim-added.json "$bench/alert.alert"
common="\"socket_path\": \"$bench/queue\", \"log_path\": \"$bench/integrations.log\""
echo "{$common, \"cache_ttl_secs\": 0}" >"$bench/lookup.options"
echo "{$common, \"cache_path\": \"$bench/cache\", \"cache_ttl_secs\": 3600}" >"$bench/cached.options"
rm -rf "$bench/cache" "$bench/integrations.log"

run_bridge() { echo "$binary $bench/alert.alert $key $url '' $bench/$1.options 5 0"; }
hyperfine --warmup 20 --runs "$runs" --shell=none --export-json "$bench/bridge.json" \
    -n "custom-iocwatch, lookup" "$(run_bridge lookup)" \
    -n "custom-iocwatch, cached" "$(run_bridge cached)" \
    -n "python3 + import requests" "$python -c 'import requests'"

# Every bridge run must have sent its match; a failure would only show in the log.
sent=$(cat "$bench/queue.count")
expected=$(( 2 * (runs + 20) ))
echo "messages received: $sent of $expected"
[ "$sent" -eq "$expected" ] || { echo "bench/bridge.sh: missing messages, see $bench/integrations.log" >&2; exit 1; }

"$python" - "$bench/bridge.json" <<'EOF'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
anchor = results["python3 + import requests"]["median"]
print("| command | median (ms) | mean ± stddev (ms) | anchor median / median |")
print("|---|---|---|---|")
for name, r in results.items():
    spread = f"{r['mean'] * 1e3:.1f} ± {r['stddev'] * 1e3:.1f}"
    print(f"| {name} | {r['median'] * 1e3:.2f} | {spread} | {anchor / r['median']:.0f}x |")
EOF
