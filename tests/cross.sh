#!/usr/bin/env bash
# Runs the Rust tests and the C test suite for another Linux target:
#
#   tests/cross.sh x86_64-unknown-linux-musl   musl-gcc; static binaries
#   tests/cross.sh i686-unknown-linux-gnu      32-bit intptr_t, size_t, time_t
#   tests/cross.sh aarch64-unknown-linux-gnu   cross-built, run under qemu-user
#
# Needs the target's standard library (`rustup target add TARGET`) and its
# C toolchain (Debian packages): musl-tools; gcc-i686-linux-gnu with
# libc6-dev-i386-cross, libc6-i386 and lib32gcc-s1 (gcc-multilib conflicts
# with the aarch64 cross compiler, so the i686 cross compiler stands in for
# `gcc -m32`: the same 32-bit glibc ABI, and the programs run natively);
# gcc-aarch64-linux-gnu with libc6-dev-arm64-cross and qemu-user-static (or
# qemu-user).
#
# Each target builds into target/cross/ and build/cross/TARGET/. Under qemu
# the C suite's iteration counts are scaled down (RSOCK_TEST_SCALE) and the
# stress test is shorter (RSOCK_STRESS_SECONDS); both can be overridden.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: tests/cross.sh TARGET}
runner=()
static=()
extra=()
case $target in
x86_64-unknown-linux-musl)
  cc=${CROSS_CC:-musl-gcc}
  # The Rust tests link with Rust's own (self-contained) musl; the C suite
  # links librsock.a with the system's musl-gcc, statically (checked below).
  cargo_linker=
  static=(-static)
  # Rust's standard library for musl unwinds with LLVM's libunwind, which
  # the static library lists as a native dependency (rustc --print
  # native-static-libs: -lunwind -lc); musl-gcc's own libgcc_eh is built
  # for glibc. Rust ships that libunwind.a with the target.
  # (By path: -L to that directory would put Rust's own libc.a before
  # musl-gcc's.)
  extra=("$(rustc --print sysroot)/lib/rustlib/$target/lib/self-contained/libunwind.a")
  ;;
i686-unknown-linux-gnu)
  cc=${CROSS_CC:-i686-linux-gnu-gcc}
  ;;
aarch64-unknown-linux-gnu)
  cc=${CROSS_CC:-aarch64-linux-gnu-gcc}
  qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
  [ -n "$qemu" ] || { echo "no qemu-aarch64 (install qemu-user-static)" >&2; exit 2; }
  runner=("$qemu" -L /usr/aarch64-linux-gnu)
  # Slower, and no fork() while threads run (see tests/c/rtest.h).
  export RSOCK_TEST_EMULATED=1
  export RSOCK_TEST_SCALE=${RSOCK_TEST_SCALE:-0.25}
  export RSOCK_STRESS_SECONDS=${RSOCK_STRESS_SECONDS:-3}
  ;;
*)
  echo "unknown target: $target" >&2
  exit 2
  ;;
esac

triple=$(echo "$target" | tr 'a-z-' 'A-Z_')
if [ -n "${cargo_linker-$cc}" ]; then
  export "CARGO_TARGET_${triple}_LINKER=$cc"
fi
if [ ${#runner[@]} -gt 0 ]; then
  export "CARGO_TARGET_${triple}_RUNNER=${runner[*]}"
  # tests/debug_checks.rs runs its own binary again: under the emulator too.
  export RSOCK_TEST_RUNNER="${runner[*]}"
fi
export CARGO_TARGET_DIR=target/cross

echo "== $target: Rust tests"
cargo test --target "$target"

echo "== $target: the C test suite"
# As `make lib` builds it: LTO (cargo applies it without an rlib alongside).
cargo rustc --release --lib --target "$target" --crate-type staticlib
lib=target/cross/$target/release/librsock.a
out=build/cross/$target
mkdir -p "$out"
# The native libraries after librsock.a: the linux line of cmake/native-libs.txt.
ldlibs=$(sed -n 's/^linux: *//p' cmake/native-libs.txt | sed 's/[^ ][^ ]*/-l&/g')
pass=0 fail=0 skip=0
for src in tests/c/test_*.c; do
  name=$(basename "$src" .c)
  link=("${static[@]}")
  # The tests that stand in for libc functions the library calls reach the
  # real ones with dlsym(RTLD_NEXT), which a static binary does not have:
  # those link dynamically (with musl's own dynamic linker, for musl).
  if grep -q 'fake_resolver\.h\|RTLD_NEXT' "$src"; then
    link=()
  fi
  # shellcheck disable=SC2086
  "$cc" -O2 -g -Wall -Wextra -Werror -Iinclude -Itests/c "${link[@]}" "$src" "$lib" $ldlibs "${extra[@]}" -o "$out/$name"
done
if [ ${#static[@]} -gt 0 ]; then
  # A static binary has no program interpreter.
  if readelf -l "$out/test_tokens" | grep -q INTERP; then
    echo "$out/test_tokens is not static" >&2
    exit 1
  fi
fi
# run_test NAME [VAR=VALUE...]: runs one test program, counting the result.
run_test() {
  local name=$1 rc=0
  shift
  echo "== $target: $name $*"
  env "$@" timeout 600 "${runner[@]}" "$out/$name" || rc=$?
  if [ $rc -eq 0 ]; then
    pass=$((pass + 1))
  elif [ $rc -eq 77 ]; then # skipped: the test says why (the TLS tests: no cross-built TLS library)
    skip=$((skip + 1))
  else
    fail=$((fail + 1))
    echo "FAILED: $name $*"
  fi
}
for src in tests/c/test_*.c; do
  run_test "$(basename "$src" .c)"
done
# Again with the signal-wake fast path on, where the target has one (on
# the others the variable changes nothing).
for name in test_race test_calls; do
  run_test "$name" RSOCK_WAKE_SIGNAL=40
done
echo "$target c tests: $pass passed, $skip skipped, $fail failed"
test "$fail" -eq 0
