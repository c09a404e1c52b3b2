# ctest driver: configures, builds and runs tests/consumer-fetch, which pulls
# in rsock with FetchContent (cargo builds it afresh there); checks that
# rsock says which cargo it builds with, and that installing the project
# installs nothing of rsock's (RSOCK_INSTALL is off for a subproject).
# Variables: SOURCE, BINARY, RSOCK_SOURCE_DIR, C_COMPILER.
include("${CMAKE_CURRENT_LIST_DIR}/../consumer/run.cmake")

file(REMOVE_RECURSE "${BINARY}")
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SOURCE}" -B "${BINARY}"
    "-DRSOCK_SOURCE_DIR=${RSOCK_SOURCE_DIR}" "-DCMAKE_C_COMPILER=${C_COMPILER}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure failed:\n${out}")
endif()
if(NOT out MATCHES "rsock: building with [^\n]*cargo")
  message(FATAL_ERROR "rsock did not say which cargo it uses:\n${out}")
endif()
run("${CMAKE_COMMAND}" --build "${BINARY}")
run("${BINARY}/consumer_fetch")

set(prefix "${BINARY}/prefix")
run("${CMAKE_COMMAND}" --install "${BINARY}" --prefix "${prefix}")
file(GLOB_RECURSE installed RELATIVE "${prefix}" "${prefix}/*")
if(NOT installed STREQUAL "bin/consumer_fetch")
  message(FATAL_ERROR "installing the consumer installed more than its program: ${installed}")
endif()
