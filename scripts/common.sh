# Sourced by the scripts here: the helpers they share.

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stop_pid FILE: ends the process whose id FILE holds and waits until it is gone (SIGTERM, then SIGKILL
# after 10 s), so nothing is still writing into a directory about to be removed.
stop_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# remove_dir DIR: removes a scratch directory; a leftover never changes a script's exit status.
remove_dir() {
  rm -rf "$1" 2>/dev/null || { sleep 1; rm -rf "$1" 2>/dev/null; } || echo "note: could not remove $1" >&2
}
