#!/usr/bin/env bash
# A local cluster on loopback, to try scale-out by hand (`make cluster`):
#
#   redis-server  on a free port (or REDIS_PORT), unless GATEWAY_MESSAGE_QUEUE is given
#   N workers     `gunicorn -k eventlet -w 1 wsgi:app`, one process each, on consecutive
#                 ports from WORKER_PORT, with GATEWAY_MESSAGE_QUEUE and GATEWAY_PROXY_FIX=1
#   nginx         nginx/cluster.conf (ip_hash) in front, on PORT
#
# Usage: scripts/cluster.sh [-n WORKERS] [-p PORT]
# Environment: WORKERS (3), PORT (8080), WORKER_PORT (5001), REDIS_PORT (a free one),
#   GATEWAY_MESSAGE_QUEUE (start no Redis, use this one), GATEWAY_SECRET_KEY (default:
#   instance/secret_key, as `make run`), PY (.venv/bin/python), any other GATEWAY_* setting.
# The workers share the SQLite database in instance/ (fine for trying it out; use a real
# database server for more). On the first start the user `demo` is created and its
# password printed once, as `make run` does. Ctrl-C or SIGTERM stops everything this
# script started (workers first, so they drain; then nginx; then Redis), by PID. Logs
# go to a temporary folder, printed at start and kept.
set -euo pipefail
set -m  # every background job in its own process group: Ctrl-C reaches this script only

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
WORKERS=${WORKERS:-3}
PORT=${PORT:-8080}
WORKER_PORT=${WORKER_PORT:-5001}
HOST=127.0.0.1

usage() { sed -n '2,19s/^# \{0,1\}//p' "$0"; }
while getopts "n:p:h" opt; do
  case $opt in
    n) WORKERS=$OPTARG ;;
    p) PORT=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || { echo "WORKERS must be a positive number" >&2; exit 2; }

find_binary() {  # on PATH, or in the sbin folders a user's PATH often lacks
  command -v "$1" 2>/dev/null && return
  local dir
  for dir in /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin; do
    [ -x "$dir/$1" ] && { echo "$dir/$1"; return; }
  done
  echo "$1 is not installed (scripts/system-deps.sh installs it)" >&2
  return 1
}
NGINX=$(find_binary nginx)
[ -x "$PY" ] || { echo "no Python at $PY: run make install first (or set PY)" >&2; exit 1; }

port_free() {
  "$PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# GET /healthz answered 200 (plain bash: no curl needed).
http_ok() {
  (exec 3<>"/dev/tcp/$HOST/$1" &&
   printf 'GET /healthz HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$HOST" "$1" >&3 &&
   IFS= read -r -t 2 status <&3 && [[ $status == *" 200 "* ]]) 2>/dev/null
}
redis_ok() {
  (exec 3<>"/dev/tcp/$HOST/$1" && printf 'PING\r\n' >&3 &&
   IFS= read -r -t 2 reply <&3 && [[ $reply == "+PONG"* ]]) 2>/dev/null
}

# wait_until WHAT PID SECONDS COMMAND...: poll COMMAND until it succeeds, with a deadline;
# give up at once if process PID has exited.
wait_until() {
  local what=$1 pid=$2 deadline=$((SECONDS + $3)); shift 3
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$what exited while starting" >&2; return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "timed out waiting for $what" >&2; return 1
    fi
    sleep 0.1  # poll interval of a deadline wait
  done
}

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gateway-cluster.XXXXXX")
redis_pid="" nginx_pid=""
worker_pids=()
stopped=0

stop_all() {
  ((stopped)) && return
  stopped=1
  trap - INT TERM
  echo
  echo "stopping (logs kept in $RUN_DIR)"
  local pid
  # Workers first: each drains (its clients get `close` with server_shutdown, through nginx).
  for pid in "${worker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${worker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$nginx_pid" ]; then kill -TERM "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  if [ -n "$redis_pid" ]; then kill -TERM "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

# The secret key: one for every worker (each must read the others' login cookies).
if [ -z "${GATEWAY_SECRET_KEY:-}" ]; then
  if [ ! -f instance/secret_key ]; then
    mkdir -p instance
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(48))' > instance/secret_key)
  fi
  GATEWAY_SECRET_KEY=$(cat instance/secret_key)
fi
export GATEWAY_SECRET_KEY
export GATEWAY_PROXY_FIX=1 PYTHONUNBUFFERED=1

ports=()
for ((i = 0; i < WORKERS; i++)); do ports+=($((WORKER_PORT + i))); done
for port in "$PORT" "${ports[@]}"; do
  port_free "$port" || { echo "port $port is in use (set PORT / WORKER_PORT)" >&2; exit 1; }
done

if [ -z "${GATEWAY_MESSAGE_QUEUE:-}" ]; then
  REDIS=$(find_binary redis-server)
  REDIS_PORT=${REDIS_PORT:-$(free_port)}
  mkdir -p "$RUN_DIR/redis"
  "$REDIS" --port "$REDIS_PORT" --bind "$HOST" --save '' --appendonly no \
    --dir "$RUN_DIR/redis" --daemonize no > "$RUN_DIR/redis.log" 2>&1 &
  redis_pid=$!
  wait_until "redis-server" "$redis_pid" 10 redis_ok "$REDIS_PORT"
  export GATEWAY_MESSAGE_QUEUE="redis://$HOST:$REDIS_PORT/0"
  echo "redis-server  $GATEWAY_MESSAGE_QUEUE (pid $redis_pid)"
else
  export GATEWAY_MESSAGE_QUEUE
  echo "message queue $GATEWAY_MESSAGE_QUEUE (given)"
fi

# The database and, when it has no users, the demo user (as `make run` does). Quietly:
# importing eventlet warns that it is deprecated (the workers' logs say so too).
"$PY" -W ignore::Warning - <<'EOF'
import auth
from wsgi import app

with app.app_context():
    password = auth.create_demo_user()
if password is not None:
    print(f"Created the user 'demo' with password: {password}", flush=True)
    print("(shown once; create more with: flask --app wsgi users create NAME)", flush=True)
EOF

upstreams=()
for i in "${!ports[@]}"; do
  port=${ports[$i]}
  "$PY" -m gunicorn -k eventlet -w 1 -b "$HOST:$port" --graceful-timeout 15 \
    --no-control-socket wsgi:app > "$RUN_DIR/worker$((i + 1)).log" 2>&1 &
  worker_pids+=($!)
  upstreams+=(--upstream "$HOST:$port")
done
for i in "${!ports[@]}"; do
  wait_until "worker $((i + 1)) (port ${ports[$i]}, log $RUN_DIR/worker$((i + 1)).log)" \
    "${worker_pids[$i]}" 60 http_ok "${ports[$i]}"
  echo "worker $((i + 1))      http://$HOST:${ports[$i]}/ (pid ${worker_pids[$i]})"
done

"$PY" nginx/render.py cluster --listen "$HOST:$PORT" "${upstreams[@]}" \
  --prefix "$RUN_DIR/nginx" > /dev/null
"$NGINX" -p "$RUN_DIR/nginx/" -e "$RUN_DIR/nginx/logs/error.log" \
  -c "$RUN_DIR/nginx/nginx.conf" -g 'daemon off;' > "$RUN_DIR/nginx.log" 2>&1 &
nginx_pid=$!
wait_until "nginx (log $RUN_DIR/nginx/logs/error.log)" "$nginx_pid" 10 http_ok "$PORT"
echo "nginx         (pid $nginx_pid), config $RUN_DIR/nginx/nginx.conf"
echo "logs          $RUN_DIR"
echo
echo "Gateway cluster on http://$HOST:$PORT/ ($WORKERS workers). Ctrl-C stops it."

# Until Ctrl-C / SIGTERM, or until one of them dies (then stop the rest and fail).
set +e
wait -n
status=$?
((stopped)) || echo "a process of the cluster exited (status $status); see $RUN_DIR" >&2
exit 1
