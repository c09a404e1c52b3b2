#!/bin/sh
# Prepares a Wine prefix to run the Windows build of rsock and its tests:
# creates the prefix (WINEPREFIX, default build/wine) and installs a
# bcryptprimitives.dll with ProcessPrng, which Rust's standard library
# imports and Wine 8 lacks. Needs wine64 and MinGW-w64
# (x86_64-w64-mingw32-gcc). Idempotent.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${WINEPREFIX:=$root/build/wine}"
export WINEPREFIX WINEDEBUG=-all
dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  mkdir -p "$WINEPREFIX"
  wineboot -i >/dev/null 2>&1 || true
  wineserver -w || true
fi
if [ ! -f "$dll" ]; then
  out=$(mktemp -d)
  x86_64-w64-mingw32-gcc -O2 -shared -o "$out/bcryptprimitives.dll" \
    "$here/processprng.c" "$here/processprng.def" -ladvapi32
  cp "$out/bcryptprimitives.dll" "$dll"
  rm -rf "$out"
fi
echo "Wine prefix ready: $WINEPREFIX"
