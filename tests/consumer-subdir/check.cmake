# ctest driver: configures, builds and runs tests/consumer-subdir, which
# pulls in rsock with add_subdirectory (cargo builds it afresh there).
# Variables: SOURCE, BINARY, RSOCK_SOURCE_DIR, C_COMPILER.
include("${CMAKE_CURRENT_LIST_DIR}/../consumer/run.cmake")

file(REMOVE_RECURSE "${BINARY}")
run("${CMAKE_COMMAND}" -S "${SOURCE}" -B "${BINARY}" "-DRSOCK_SOURCE_DIR=${RSOCK_SOURCE_DIR}"
    "-DCMAKE_C_COMPILER=${C_COMPILER}")
run("${CMAKE_COMMAND}" --build "${BINARY}")
run("${BINARY}/consumer_subdir")
if(EXISTS "${BINARY}/consumer_subdir_openssl")
  run("${BINARY}/consumer_subdir_openssl")
endif()
