#!/usr/bin/env bash
# Starts a throwaway Redis on a free loopback port for the tests of the
# Redis request store, exports REDIS_URL, and stops Redis when the shell
# exits. Nothing is saved to disk.
#
#   . .ci/redis.sh                   # from .ci/run: REDIS_URL set until exit
#   .ci/redis.sh go test ./redisstore/  # run one command with it
#
# Installs redis-server with apt-get when it is missing (CI runs as root).

_redis_ci_say() { printf 'redis.sh: %s\n' "$*" >&2; }

_redis_ci_install() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  if [ "$(id -u)" != 0 ]; then
    _redis_ci_say "redis-server is not installed and we are not root to apt-get it; install redis-server"
    return 1
  fi
  _redis_ci_say "installing redis-server"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >&2; then
    _redis_ci_say "apt-get could not install redis-server"
    return 1
  fi
}

# _redis_ci_port_busy reports whether something accepts connections on port.
_redis_ci_port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# _redis_ci_try starts redis-server on port and waits until it answers as
# the process we started. It returns 2 when the port turned out to be
# taken (try another), 1 when Redis cannot start at all.
_redis_ci_try() {
  local port=$1 deadline=$((SECONDS + 10)) pid=""
  rm -f "$_REDIS_CI_DIR/redis.pid"
  if ! redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$_REDIS_CI_DIR/redis.pid" \
    --dir "$_REDIS_CI_DIR" --logfile "$_REDIS_CI_DIR/redis.log" >&2; then
    _redis_ci_say "redis-server failed to start; its log:"
    cat "$_REDIS_CI_DIR/redis.log" >&2 || true
    return 1
  fi
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -s "$_REDIS_CI_DIR/redis.pid" ]; then
      pid=$(cat "$_REDIS_CI_DIR/redis.pid")
      # Answering is not enough: another Redis may have taken the port.
      if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] &&
        [ "$(redis-cli -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$pid" ]; then
        _REDIS_CI_PID=$pid
        return 0
      fi
    fi
    if grep -q 'Address already in use' "$_REDIS_CI_DIR/redis.log" 2>/dev/null; then
      return 2
    fi
    sleep 0.1
  done
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  _redis_ci_say "redis-server on port $port did not answer within 10s; its log:"
  cat "$_REDIS_CI_DIR/redis.log" >&2 || true
  return 1
}

_redis_ci_start() {
  if [ -n "${_REDIS_CI_PID:-}" ]; then
    _redis_ci_say "already running at $REDIS_URL"
    return 0
  fi
  _redis_ci_install || return 1
  _REDIS_CI_DIR=$(mktemp -d) || return 1
  local port status
  for port in $(seq 6390 6429); do
    _redis_ci_port_busy "$port" && continue
    : >"$_REDIS_CI_DIR/redis.log"
    status=0
    _redis_ci_try "$port" || status=$?
    case $status in
    0)
      export REDIS_URL="redis://127.0.0.1:$port/0"
      _redis_ci_say "Redis at $REDIS_URL (pid $_REDIS_CI_PID)"
      return 0
      ;;
    2) continue ;;
    *) return 1 ;;
    esac
  done
  _redis_ci_say "could not start Redis on any port in 6390-6429"
  return 1
}

# _redis_ci_alive reports whether pid runs; a daemon that exited but that
# init has not reaped yet counts as gone.
_redis_ci_alive() {
  if [ -r "/proc/$1/status" ]; then
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
  else
    kill -0 "$1" 2>/dev/null
  fi
}

_redis_ci_stop() {
  local deadline=$((SECONDS + 10))
  if [ -n "${_REDIS_CI_PID:-}" ]; then
    kill "$_REDIS_CI_PID" 2>/dev/null || true
    while _redis_ci_alive "$_REDIS_CI_PID" && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.1
    done
    if _redis_ci_alive "$_REDIS_CI_PID"; then
      _redis_ci_say "Redis (pid $_REDIS_CI_PID) ignored SIGTERM; killing it"
      kill -9 "$_REDIS_CI_PID" 2>/dev/null || true
    fi
    _REDIS_CI_PID=""
  fi
  if [ -n "${_REDIS_CI_DIR:-}" ]; then rm -rf "$_REDIS_CI_DIR"; fi
  _REDIS_CI_DIR=""
}

# This replaces any EXIT trap of the caller (bash cannot tell a subshell's
# inherited trap text from its own); a caller with its own EXIT trap should
# call _redis_ci_stop from it.
trap _redis_ci_stop EXIT

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: a failure ends the caller (which runs with set -e) or is its
  # status to check.
  if ! _redis_ci_start; then
    _redis_ci_stop
    return 1
  fi
else
  if [ $# -eq 0 ]; then
    _redis_ci_say "usage: . .ci/redis.sh   or   .ci/redis.sh COMMAND [ARG...]"
    exit 2
  fi
  _redis_ci_start || exit 1
  "$@"
fi
