#!/bin/sh
# Slims the release build's librsock.a (and relinks librsock.so from it) on
# ELF systems with GNU binutils, after an LTO build (`cargo rustc --release
# --lib --crate-type staticlib --crate-type cdylib`: cargo applies the
# profile's `lto` only when no rlib is built at the same time):
#
#   cmake/slim.sh STATIC_LIB [SHARED_LIB SONAME NATIVE_LIB_FLAGS...]
#
# The LTO build leaves one object holding rsock and the parts of the Rust
# standard library it uses. Rust's std comes with its panic handler, whose
# message printing ends in a backtrace printer (a DWARF parser, a
# decompressor, a symbol demangler): some 200 KB that every program linking
# the archive would carry, because any code that can panic reaches it. This
# script
#  1. replaces the body of std's `<DisplayBacktrace as Display>::fmt` (the
#     one caller of the backtrace printer) by `return Ok(())`: a panic still
#     prints its message ("thread ... panicked at ...") and is still caught
#     at the C boundary (rsock_* returns ENOTRECOVERABLE); only the
#     backtrace under the message is gone;
#  2. keeps what the rsock_* functions reach and drops the rest
#     (`ld -r --gc-sections` with them as roots), so a program gets the
#     small object without linking with --gc-sections itself;
#  3. makes every symbol but rsock_* local, so that two Rust static
#     libraries (each with its own std) can be linked into one program;
#  4. given SHARED_LIB, relinks the shared library from that object, with
#     the same SONAME and only the rsock_* symbols exported.
# The archive then holds that one object, rsock-slim.o.
#
# Anything else (a debug build, another object format, missing tools)
# leaves the files as they are. Running it twice changes nothing. Tools:
# $AR, $NM, $OBJCOPY, $LD, $READELF and $CC (defaults: the plain names).
# tests/footprint/footprint.sh measures the result.
set -eu

lib=$1
shared=${2:-}
soname=${3:-}
[ $# -gt 3 ] && shift 3 || set --
AR=${AR:-ar} NM=${NM:-nm} OBJCOPY=${OBJCOPY:-objcopy} LD=${LD:-ld} READELF=${READELF:-readelf} CC=${CC:-cc}

note() { echo "slim.sh: $*" >&2; }
for tool in "$AR" "$NM" "$OBJCOPY" "$LD" "$READELF"; do
  command -v "$tool" >/dev/null 2>&1 || { note "no $tool: $lib left as is"; exit 0; }
done
members=$("$AR" t "$lib")
if echo "$members" | grep -q '^rsock-slim\.o$'; then
  exit 0 # already done
fi
main=$(echo "$members" | grep '^rsock.*\.o$' || true)
if [ "$(echo "$main" | grep -c .)" -ne 1 ] || echo "$members" | grep -q '^std-'; then
  note "not an LTO build: $lib left as is"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rsock-slim.XXXXXX")
trap 'rm -rf "$work"' EXIT
lib_abs=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
(cd "$work" && "$AR" x "$lib_abs")
obj=$work/$main
if ! "$READELF" -h "$obj" 2>/dev/null | grep -q 'Class:.*ELF'; then
  note "not ELF: $lib left as is"
  exit 0
fi

# 1. `return Ok(())` in this machine's code (fmt::Result is one byte: 0).
case $("$READELF" -h "$obj" | sed -n 's/^ *Machine: *//p') in
*X86-64* | *80386*) ret0='\061\300\303' pad='\314' ;;            # xor eax,eax; ret; int3...
*AArch64*) ret0='\000\000\200\122\300\003\137\326' pad='\000' ;; # mov w0,#0; ret; udf...
*) ret0= pad= ;;
esac
stub_args=
sym=$("$NM" "$obj" | awk '$3 ~ /16DisplayBacktrace.*7Display3fmt$/ {print $3; exit}')
if [ -n "$ret0" ] && [ -n "$sym" ]; then
  sec=.text.$sym
  size=$("$READELF" -S -W "$obj" | sed 's/\[ */[/' | awk -v s="$sec" '$2 == s {print $6}')
  if [ -n "$size" ]; then
    n=$(printf '%d' "0x$size")
    { printf "$ret0"; head -c "$n" /dev/zero | tr '\0' "$pad"; } | head -c "$n" >"$work/stub.bin"
    stub_args="--remove-section .rela$sec --update-section $sec=$work/stub.bin"
  fi
fi
[ -n "$stub_args" ] || note "backtrace printer not found: left in place"
# shellcheck disable=SC2086
"$OBJCOPY" $stub_args "$obj" "$work/stubbed.o"

# 2. and 3. The compiler-builtins objects come along as an archive, so that
# only the ones needed are linked in (their embedded LLVM bitcode serves
# nothing here, and binutils with clang's LLVM plugin complain about it).
builtins=$(echo "$members" | grep -v "^$main\$" || true)
(
  cd "$work"
  for b in $builtins; do
    "$OBJCOPY" --remove-section=.llvmbc --remove-section=.llvmcmd "$b"
  done
  # shellcheck disable=SC2086
  "$AR" rcs builtins.a $builtins
)
roots=$("$NM" -g --defined-only "$work/stubbed.o" | awk '$3 ~ /^rsock_/ {printf " -u %s", $3}')
# shellcheck disable=SC2086
"$LD" -r --gc-sections $roots "$work/stubbed.o" "$work/builtins.a" -o "$work/gc.o"
# (The debug information is the standard library's: the release profile
# has none of its own.)
"$OBJCOPY" --strip-debug --wildcard --keep-global-symbol='rsock_*' "$work/gc.o" "$work/rsock-slim.o"

(
  cd "$work"
  "$AR" rcs new.a rsock-slim.o
)
mv "$work/new.a" "$lib"

# 4.
if [ -n "$shared" ]; then
  printf '{ global: rsock_*; local: *; };\n' >"$work/exports.map"
  "$CC" -shared -o "$work/shared.so" -Wl,-soname,"$soname" -Wl,--version-script="$work/exports.map" \
    -Wl,--gc-sections -Wl,--strip-debug -Wl,-z,relro,-z,now -Wl,-z,noexecstack \
    "$work/rsock-slim.o" "$@"
  mv "$work/shared.so" "$shared"
fi
