# ctest driver: installs the built rsock into a scratch prefix, then builds
# and runs tests/consumer through find_package(rsock) and through pkg-config,
# and builds the examples with examples-c/Makefile (pkg-config) and runs them
# under the example driver.
# Variables: RSOCK_BUILD_DIR, RSOCK_SOURCE_DIR, WORK_DIR, C_COMPILER,
# CXX_COMPILER (optional: also the C++ consumer),
# DRIVER (the example driver) and EXAMPLES (comma-separated names), when
# the examples are built.
include("${CMAKE_CURRENT_LIST_DIR}/run.cmake")

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
run("${CMAKE_COMMAND}" --install "${RSOCK_BUILD_DIR}" --prefix "${prefix}")

# find_package(rsock)
run("${CMAKE_COMMAND}" -S "${RSOCK_SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/fp"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_C_COMPILER=${C_COMPILER}")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/fp")
run("${WORK_DIR}/fp/consumer_static")
if(CXX_COMPILER)
  run("${WORK_DIR}/fp/consumer_cpp")
endif()
if(EXISTS "${WORK_DIR}/fp/consumer_openssl")
  run("${WORK_DIR}/fp/consumer_openssl")
endif()
set(ENV{LD_LIBRARY_PATH} "${prefix}/lib")
run("${WORK_DIR}/fp/consumer_shared")

# pkg-config, static and shared
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
  execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs rsock-static
    OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config rsock-static failed")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  # --no-as-needed: a stray dependency on librsock.so would show.
  run("${C_COMPILER}" "${RSOCK_SOURCE_DIR}/tests/consumer/main.c" -o "${WORK_DIR}/pc_static"
      -Wl,--no-as-needed ${flags})
  execute_process(COMMAND readelf -d "${WORK_DIR}/pc_static" OUTPUT_VARIABLE dyn)
  if(dyn MATCHES "librsock")
    message(FATAL_ERROR "the static pkg-config link depends on librsock.so:\n${dyn}")
  endif()
  unset(ENV{LD_LIBRARY_PATH})
  run("${WORK_DIR}/pc_static")
  if(CXX_COMPILER)
    run("${CXX_COMPILER}" -std=c++17 "${RSOCK_SOURCE_DIR}/tests/consumer/main.cpp" -o "${WORK_DIR}/pc_cpp" ${flags})
    run("${WORK_DIR}/pc_cpp")
  endif()
  set(ENV{LD_LIBRARY_PATH} "${prefix}/lib")
  execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs rsock
    OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run("${C_COMPILER}" "${RSOCK_SOURCE_DIR}/tests/consumer/main.c" -o "${WORK_DIR}/pc_shared" ${flags})
  run("${WORK_DIR}/pc_shared")
else()
  message(STATUS "pkg-config not found: pkg-config path not checked")
endif()

# examples-c/Makefile, the way a user without CMake builds against an
# install: static (rsock-static.pc), then shared (rsock.pc).
if(PKG_CONFIG AND DRIVER)
  find_program(MAKE_PROGRAM NAMES gmake make REQUIRED)
  string(REPLACE "," ";" examples "${EXAMPLES}")
  foreach(flavour rsock-static rsock)
    set(out "${WORK_DIR}/examples-${flavour}")
    file(MAKE_DIRECTORY "${out}")
    run("${MAKE_PROGRAM}" -C "${RSOCK_SOURCE_DIR}/examples-c" "O=${out}" "CC=${C_COMPILER}"
        "RSOCK_PC=${flavour}")
    foreach(example IN LISTS examples)
      run("${DRIVER}" "${example}" "${out}/${example}")
    endforeach()
  endforeach()
endif()

