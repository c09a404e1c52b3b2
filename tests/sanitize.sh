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
# SANITIZE_TESTS="tests/c/test_a.c ..." runs only those tests.
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

# The TLS adapter tests link their library when it is there (as in the
# Makefile); otherwise they build as stubs that exit 77 (skipped).
openssl_libs=$(pkg-config --libs openssl 2>/dev/null || true)
openssl_cflags=$(pkg-config --cflags openssl 2>/dev/null || true)
mbedtls_libs="-lmbedtls -lmbedx509 -lmbedcrypto"
printf '#include <mbedtls/ssl.h>\nint main(void) { return 0; }\n' |
  $clang -x c - -o /dev/null $mbedtls_libs >/dev/null 2>&1 || mbedtls_libs=""

pass=0 fail=0 skip=0
for src in ${SANITIZE_TESTS:-tests/c/test_*.c}; do
  name=$(basename "$src" .c)
  tflags="" tlibs=""
  case $name in
  test_tls_openssl) [ -z "$openssl_libs" ] || { tflags="-DRSOCK_TEST_OPENSSL $openssl_cflags"; tlibs=$openssl_libs; } ;;
  test_tls_mbedtls) [ -z "$mbedtls_libs" ] || { tflags="-DRSOCK_TEST_MBEDTLS"; tlibs=$mbedtls_libs; } ;;
  esac
  $clang $cflags -fno-omit-frame-pointer -g -O1 -Wall -Wextra -Werror $tflags -Iinclude -Itests/c \
    -c "$src" -o "$out/$name.o"
  $clang "$out/$name.o" "$lib" $tlibs -Wl,--whole-archive "$runtime" -Wl,--no-whole-archive \
    $ldlibs -lstdc++ -o "$out/$name" 2>&1 | { grep -v 'warning:' || true; }
  echo "== $san: $name"
  rc=0
  timeout 600 "$out/$name" || rc=$?
  if [ $rc -eq 0 ]; then pass=$((pass + 1))
  elif [ $rc -eq 77 ]; then skip=$((skip + 1))
  else fail=$((fail + 1)); echo "FAILED: $name"; fi
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
echo "$san sanitizer: $pass passed, $fail failed, $skip skipped"
test "$fail" -eq 0
