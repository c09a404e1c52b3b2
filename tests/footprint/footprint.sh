#!/usr/bin/env bash
# The static library's footprint: how much librsock.a adds to a stripped C
# program that uses every rsock function, measured against the same program
# using the plain socket calls rsock replaces. Prints both sizes, the
# difference and the sizes of librsock.a and librsock.so as built (and
# installed); fails when the difference is above the limit.
#
#   tests/footprint/footprint.sh [LIMIT_BYTES]     (default 204800: 200 KB)
#
# The "with" program takes the address of every function the header
# declares (read from include/rsock.h, so a new function is counted without
# editing anything here) and calls one of them, chosen at run time, so the
# linker keeps them all.
set -euo pipefail
cd "$(dirname "$0")/../.."

limit=${1:-204800}
cc=${CC:-cc}
out=build/footprint
mkdir -p "$out"

# The library as `make lib` builds it (LTO, then cmake/slim.sh).
${MAKE:-make} --no-print-directory lib >&2
lib=target/release/librsock.a
so=target/release/librsock.so
ldlibs=$(sed -n 's/^linux: *//p' cmake/native-libs.txt | sed 's/[^ ][^ ]*/-l&/g')

# Every function the header declares (outside comments), once.
fns=$(grep -vE '^\s*(/\*|\*)' include/rsock.h | grep -oE '\brsock_[a-z0-9_]+\(' | tr -d '(' | sort -u)
{
  echo '#include <rsock.h>'
  echo '#include <stdlib.h>'
  echo 'typedef void (*fn)(void);'
  echo 'static fn const table[] = {'
  for f in $fns; do echo "    (fn)$f,"; done
  echo '};'
  echo 'int main(int argc, char **argv) {'
  echo '    (void)argv;'
  echo '    /* Any entry may be called: the linker must keep every one. */'
  echo '    if (argc > 100) table[argc % (sizeof table / sizeof table[0])]();'
  echo '    rsock_token *t = rsock_token_new();'
  echo '    rsock_token_unref(t);'
  echo '    return 0;'
  echo '}'
} >"$out/with_rsock.c"
cat >"$out/without_rsock.c" <<'C'
/* The same program on the plain calls rsock replaces. */
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
typedef void (*fn)(void);
static fn const table[] = {
    (fn)recv, (fn)send, (fn)recvfrom, (fn)sendto, (fn)recvmsg, (fn)sendmsg,
    (fn)read, (fn)write, (fn)accept, (fn)connect, (fn)poll, (fn)getaddrinfo,
    (fn)freeaddrinfo, (fn)strerror, (fn)malloc, (fn)free,
};
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 100) table[argc % (sizeof table / sizeof table[0])]();
    free(malloc(16));
    return 0;
}
C
# -Wno-cast-function-type: the tables cast function pointers on purpose.
flags="-O2 -s -Iinclude -Wall -Wextra -Werror -Wno-cast-function-type"
# shellcheck disable=SC2086
$cc $flags "$out/with_rsock.c" "$lib" $ldlibs -o "$out/with_rsock"
# shellcheck disable=SC2086
$cc $flags "$out/without_rsock.c" -o "$out/without_rsock"
"$out/with_rsock"
"$out/without_rsock"

size() { stat -c %s "$1"; }
with=$(size "$out/with_rsock")
without=$(size "$out/without_rsock")
delta=$((with - without))
printf 'functions referenced:             %d\n' "$(echo "$fns" | wc -w)"
printf 'stripped program without rsock:   %8d bytes\n' "$without"
printf 'stripped program with librsock.a: %8d bytes\n' "$with"
printf 'added by rsock:                   %8d bytes (%d KB; limit %d KB)\n' "$delta" $((delta / 1024)) $((limit / 1024))
printf 'librsock.a as installed:          %8d bytes\n' "$(size "$lib")"
printf 'librsock.so as installed:         %8d bytes\n' "$(size "$so")"
if [ "$delta" -gt "$limit" ]; then
  # What takes the room: the largest functions and data of the unstripped
  # program (docs/DESIGN.md, "Footprint and panics", says what to look for).
  # shellcheck disable=SC2086
  $cc ${flags/-s /} "$out/with_rsock.c" "$lib" $ldlibs -o "$out/with_rsock.unstripped"
  echo "largest symbols of the program with rsock:"
  nm --size-sort -S -C "$out/with_rsock.unstripped" | tail -n 25
  echo "FAILED: rsock adds $delta bytes, above the limit of $limit" >&2
  exit 1
fi
