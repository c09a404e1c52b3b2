#!/usr/bin/env bash
# Runs the C test suite (and the C++ test) under a sanitizer, with the Rust library instrumented
# too:   tests/sanitize.sh address   (AddressSanitizer + UndefinedBehavior-
#                                      Sanitizer + LeakSanitizer)
#        tests/sanitize.sh thread    (ThreadSanitizer)
#
# The library is built with nightly rustc (-Zsanitizer, -Zbuild-std so that
# std is instrumented as well) and the tests with clang. Both are linked
# against rustc's own sanitizer runtime: rustc instruments for a newer LLVM
# than Debian's clang-14 runtime supports (it lacks __tsan_memcpy, say),
# while that runtime still serves clang-14's instrumentation.
#
# Needs: the nightly toolchain with rust-src, clang-14 (CLANG to override).
# RSOCK_SAN_C_TESTS="tests/c/test_x.c ..." runs only those C tests.
set -euo pipefail
cd "$(dirname "$0")/.."

san=${1:?usage: tests/sanitize.sh address|thread}
case $san in
address) cflags="-fsanitize=address,undefined -fno-sanitize-recover=undefined" ;;
thread) cflags="-fsanitize=thread" ;;
*) echo "unknown sanitizer: $san" >&2; exit 2 ;;
esac
clang=${CLANG:-clang-14}
host=$(rustc -vV | sed -n 's/^host: //p')
out=build/$san
mkdir -p "$out"

RUSTFLAGS="-Zsanitizer=$san" cargo +nightly build --release --lib -Zbuild-std \
  --target "$host" --target-dir "target/$san"
lib=target/$san/$host/release/librsock.a
runtime=$(rustc +nightly --print sysroot)/lib/rustlib/$host/lib/librustc-nightly_rt.${san/address/asan}.a
runtime=${runtime/rt.thread/rt.tsan}
# The native libraries after librsock.a: the linux line of cmake/native-libs.txt.
ldlibs=$(sed -n 's/^linux: *//p' cmake/native-libs.txt | sed 's/[^ ][^ ]*/-l&/g')

# use_sigaltstack=0: after pthread_cancel unwinds a thread (test_hazards
# does), ASan's own sigaltstack call at thread exit trips over the stale
# poisoning of the unwound frames, a false report in the runtime.
export ASAN_OPTIONS=use_sigaltstack=0:detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# die_after_fork=0: test_resolve's fork child starts a resolver thread,
# which TSan refuses by default after a multithreaded fork.
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 die_after_fork=0"
export RSOCK_TEST_SCALE=${RSOCK_TEST_SCALE:-0.2}

pass=0 fail=0
for src in ${RSOCK_SAN_C_TESTS:-tests/c/test_*.c}; do
  name=$(basename "$src" .c)
  $clang $cflags -fno-omit-frame-pointer -g -O1 -Wall -Wextra -Werror -Iinclude -Itests/c \
    -c "$src" -o "$out/$name.o"
  $clang "$out/$name.o" "$lib" -Wl,--whole-archive "$runtime" -Wl,--no-whole-archive \
    $ldlibs -lstdc++ -o "$out/$name" 2>&1 | { grep -v 'warning:' || true; }
  echo "== $san: $name"
  if timeout 600 "$out/$name"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $name"; fi
done
# The C++ tests (C++20: std::jthread and std::stop_token included). UBSan's
# vptr and function checks need its C++ runtime, which rustc's lacks.
cxxflags=$cflags
[ "$san" = address ] && cxxflags="$cflags -fno-sanitize=vptr,function"
for src in tests/cpp/test_cpp.cpp; do
  name=$(basename "$src" .cpp)
  ${clang/clang/clang++} -std=c++20 $cxxflags -fno-omit-frame-pointer -g -O1 -Wall -Wextra -Werror -Iinclude -Itests/cpp \
    -c "$src" -o "$out/$name.o"
  $clang "$out/$name.o" "$lib" -Wl,--whole-archive "$runtime" -Wl,--no-whole-archive \
    $ldlibs -lstdc++ -o "$out/$name" 2>&1 | { grep -v 'warning:' || true; }
  echo "== $san: $name"
  if timeout 600 "$out/$name"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $name"; fi
done
echo "$san sanitizer: $pass passed, $fail failed"
test "$fail" -eq 0
