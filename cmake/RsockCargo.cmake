# Builds the rsock crate with cargo (no network beyond the crate registry,
# no FetchContent) and defines the imported targets:
#   rsock::rsock         static library, carrying the native libraries it needs
#   rsock::rsock_shared  shared library
include_guard(GLOBAL)

find_package(Threads REQUIRED)
find_program(RSOCK_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin" REQUIRED)

set(RSOCK_CARGO_PROFILE "release" CACHE STRING "Cargo profile used to build rsock (release or dev)")
set(_rsock_src "${CMAKE_CURRENT_LIST_DIR}/..")
get_filename_component(_rsock_src "${_rsock_src}" ABSOLUTE)
set(_rsock_target_dir "${CMAKE_CURRENT_BINARY_DIR}/cargo")
if(RSOCK_CARGO_PROFILE STREQUAL "dev")
  set(_rsock_out "${_rsock_target_dir}/debug")
else()
  set(_rsock_out "${_rsock_target_dir}/${RSOCK_CARGO_PROFILE}")
endif()

set(RSOCK_STATIC_LIB "${_rsock_out}/${CMAKE_STATIC_LIBRARY_PREFIX}rsock${CMAKE_STATIC_LIBRARY_SUFFIX}")
if(APPLE)
  set(RSOCK_SHARED_LIB "${_rsock_out}/librsock.dylib")
  set(RSOCK_SHARED_SONAME "")
else()
  set(RSOCK_SHARED_LIB "${_rsock_out}/librsock.so")
  set(RSOCK_SHARED_SONAME "librsock.so.${PROJECT_VERSION_MAJOR}")
endif()

# What Rust's standard library needs when linked statically
# (`cargo rustc -- --print native-static-libs`).
set(RSOCK_NATIVE_LIBS Threads::Threads)
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  list(APPEND RSOCK_NATIVE_LIBS ${CMAKE_DL_LIBS} m rt util)
elseif(CMAKE_SYSTEM_NAME MATCHES "BSD")
  list(APPEND RSOCK_NATIVE_LIBS m execinfo util)
endif()

file(GLOB_RECURSE _rsock_sources CONFIGURE_DEPENDS "${_rsock_src}/src/*.rs")
set(_rsock_outputs "${RSOCK_STATIC_LIB}" "${RSOCK_SHARED_LIB}")
set(_rsock_link_soname "")
if(RSOCK_SHARED_SONAME)
  # The SONAME must resolve in the build tree too.
  set(_rsock_link_soname COMMAND "${CMAKE_COMMAND}" -E create_symlink librsock.so "${_rsock_out}/${RSOCK_SHARED_SONAME}")
  list(APPEND _rsock_outputs "${_rsock_out}/${RSOCK_SHARED_SONAME}")
endif()

add_custom_command(
  OUTPUT ${_rsock_outputs}
  COMMAND "${CMAKE_COMMAND}" -E env "CARGO_TARGET_DIR=${_rsock_target_dir}"
          "${RSOCK_CARGO}" build --lib --profile "${RSOCK_CARGO_PROFILE}"
          --manifest-path "${_rsock_src}/Cargo.toml"
  ${_rsock_link_soname}
  DEPENDS ${_rsock_sources} "${_rsock_src}/Cargo.toml" "${_rsock_src}/build.rs"
  WORKING_DIRECTORY "${_rsock_src}"
  COMMENT "Building the rsock crate with cargo (${RSOCK_CARGO_PROFILE})"
  USES_TERMINAL
  VERBATIM)
add_custom_target(rsock_cargo ALL DEPENDS ${_rsock_outputs})

add_library(rsock_static STATIC IMPORTED GLOBAL)
set_target_properties(rsock_static PROPERTIES
  IMPORTED_LOCATION "${RSOCK_STATIC_LIB}"
  INTERFACE_INCLUDE_DIRECTORIES "${_rsock_src}/include"
  INTERFACE_LINK_LIBRARIES "${RSOCK_NATIVE_LIBS}")
add_dependencies(rsock_static rsock_cargo)

add_library(rsock_shared SHARED IMPORTED GLOBAL)
set_target_properties(rsock_shared PROPERTIES
  IMPORTED_LOCATION "${RSOCK_SHARED_LIB}"
  INTERFACE_INCLUDE_DIRECTORIES "${_rsock_src}/include")
if(RSOCK_SHARED_SONAME)
  set_target_properties(rsock_shared PROPERTIES IMPORTED_SONAME "${RSOCK_SHARED_SONAME}")
endif()
add_dependencies(rsock_shared rsock_cargo)

add_library(rsock::rsock ALIAS rsock_static)
add_library(rsock::rsock_shared ALIAS rsock_shared)
