# Builds the rsock crate with cargo (no network beyond the crate registry,
# no FetchContent) and defines the imported targets:
#   rsock::rsock         static library, carrying the native libraries it needs
#   rsock::rsock_shared  shared library
#   rsock::openssl       when OpenSSL is found: what a program that includes
#                        rsock_openssl.h adds to either (OpenSSL::SSL)
include_guard(GLOBAL)

find_package(Threads REQUIRED)
find_program(RSOCK_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin" REQUIRED)

set(RSOCK_CARGO_PROFILE "release" CACHE STRING "Cargo profile used to build rsock (release or dev)")
execute_process(COMMAND "${RSOCK_CARGO}" --version OUTPUT_VARIABLE _rsock_cargo_version
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
message(STATUS "rsock: building with ${RSOCK_CARGO} (${_rsock_cargo_version}), profile ${RSOCK_CARGO_PROFILE}")
# A cross build names the Rust target; a MinGW-w64 toolchain picks its own.
set(_rsock_default_target "")
if(CMAKE_CROSSCOMPILING AND MINGW AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64)$")
  set(_rsock_default_target "x86_64-pc-windows-gnu")
endif()
set(RSOCK_RUST_TARGET "${_rsock_default_target}" CACHE STRING "Rust target triple to build rsock for (empty: the host)")
set(_rsock_src "${CMAKE_CURRENT_LIST_DIR}/..")
get_filename_component(_rsock_src "${_rsock_src}" ABSOLUTE)
set(_rsock_target_dir "${CMAKE_CURRENT_BINARY_DIR}/cargo")
set(_rsock_out "${_rsock_target_dir}")
set(_rsock_cargo_target "")
if(RSOCK_RUST_TARGET)
  string(APPEND _rsock_out "/${RSOCK_RUST_TARGET}")
  string(TOUPPER "${RSOCK_RUST_TARGET}" _rsock_triple)
  string(REPLACE "-" "_" _rsock_triple "${_rsock_triple}")
  # cargo links the shared library with this project's C compiler.
  set(_rsock_cargo_target --target "${RSOCK_RUST_TARGET}")
  set(_rsock_cargo_env "CARGO_TARGET_${_rsock_triple}_LINKER=${CMAKE_C_COMPILER}")
endif()
if(RSOCK_CARGO_PROFILE STREQUAL "dev")
  string(APPEND _rsock_out "/debug")
else()
  string(APPEND _rsock_out "/${RSOCK_CARGO_PROFILE}")
endif()

set(RSOCK_STATIC_LIB "${_rsock_out}/${CMAKE_STATIC_LIBRARY_PREFIX}rsock${CMAKE_STATIC_LIBRARY_SUFFIX}")
set(RSOCK_SHARED_IMPLIB "")
if(WIN32)
  # cargo's names for a windows-gnu cdylib: the DLL and its import library.
  set(RSOCK_SHARED_LIB "${_rsock_out}/rsock.dll")
  set(RSOCK_SHARED_IMPLIB "${_rsock_out}/librsock.dll.a")
  set(RSOCK_SHARED_SONAME "")
elseif(APPLE)
  set(RSOCK_SHARED_LIB "${_rsock_out}/librsock.dylib")
  set(RSOCK_SHARED_SONAME "")
else()
  set(RSOCK_SHARED_LIB "${_rsock_out}/librsock.so")
  set(RSOCK_SHARED_SONAME "librsock.so.${PROJECT_VERSION_MAJOR}")
endif()

# What a program needs after the static library: the line for this platform
# in cmake/native-libs.txt (which the Makefile reads too), pthread as
# Threads::Threads.
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(_rsock_platform linux)
elseif(CMAKE_SYSTEM_NAME MATCHES "BSD")
  set(_rsock_platform bsd)
elseif(WIN32)
  set(_rsock_platform windows)
else()
  set(_rsock_platform unix)
endif()
set(_rsock_native_libs_file "${CMAKE_CURRENT_LIST_DIR}/native-libs.txt")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_rsock_native_libs_file}")
file(STRINGS "${_rsock_native_libs_file}" RSOCK_NATIVE_LIBS REGEX "^${_rsock_platform}:")
if(NOT RSOCK_NATIVE_LIBS)
  message(FATAL_ERROR "${_rsock_native_libs_file} has no line for ${_rsock_platform}")
endif()
string(REGEX REPLACE "^${_rsock_platform}: *" "" RSOCK_NATIVE_LIBS "${RSOCK_NATIVE_LIBS}")
separate_arguments(RSOCK_NATIVE_LIBS UNIX_COMMAND "${RSOCK_NATIVE_LIBS}")
list(TRANSFORM RSOCK_NATIVE_LIBS PREPEND "-l" OUTPUT_VARIABLE _rsock_native_flags)
list(TRANSFORM RSOCK_NATIVE_LIBS REPLACE "^pthread$" "Threads::Threads")

file(GLOB_RECURSE _rsock_sources CONFIGURE_DEPENDS "${_rsock_src}/src/*.rs")
set(_rsock_outputs "${RSOCK_STATIC_LIB}" "${RSOCK_SHARED_LIB}" ${RSOCK_SHARED_IMPLIB})
set(_rsock_link_soname "")
if(RSOCK_SHARED_SONAME)
  # The SONAME must resolve in the build tree too.
  set(_rsock_link_soname COMMAND "${CMAKE_COMMAND}" -E create_symlink librsock.so "${_rsock_out}/${RSOCK_SHARED_SONAME}")
  list(APPEND _rsock_outputs "${_rsock_out}/${RSOCK_SHARED_SONAME}")
endif()

# `cargo rustc` with the C crate types only: cargo applies the profile's LTO
# only when no rlib is built alongside. On ELF systems with binutils the
# release build is then slimmed and the shared library relinked from it
# (cmake/slim.sh; docs/DESIGN.md, "Footprint").
set(_rsock_slim "")
if(RSOCK_SHARED_SONAME AND NOT RSOCK_CARGO_PROFILE STREQUAL "dev"
   AND CMAKE_OBJCOPY AND CMAKE_NM AND CMAKE_AR AND CMAKE_LINKER AND CMAKE_READELF)
  set(_rsock_slim COMMAND "${CMAKE_COMMAND}" -E env "AR=${CMAKE_AR}" "NM=${CMAKE_NM}"
    "OBJCOPY=${CMAKE_OBJCOPY}" "LD=${CMAKE_LINKER}" "READELF=${CMAKE_READELF}" "CC=${CMAKE_C_COMPILER}"
    sh "${_rsock_src}/cmake/slim.sh" "${RSOCK_STATIC_LIB}" "${RSOCK_SHARED_LIB}" "${RSOCK_SHARED_SONAME}"
    ${_rsock_native_flags})
endif()

add_custom_command(
  OUTPUT ${_rsock_outputs}
  COMMAND "${CMAKE_COMMAND}" -E env "CARGO_TARGET_DIR=${_rsock_target_dir}" ${_rsock_cargo_env}
          "${RSOCK_CARGO}" rustc --lib --profile "${RSOCK_CARGO_PROFILE}" ${_rsock_cargo_target}
          --crate-type staticlib --crate-type cdylib
          --manifest-path "${_rsock_src}/Cargo.toml"
  ${_rsock_slim}
  ${_rsock_link_soname}
  DEPENDS ${_rsock_sources} "${_rsock_src}/Cargo.toml" "${_rsock_src}/build.rs" "${_rsock_src}/cmake/slim.sh"
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
if(RSOCK_SHARED_IMPLIB)
  set_target_properties(rsock_shared PROPERTIES IMPORTED_IMPLIB "${RSOCK_SHARED_IMPLIB}")
endif()
add_dependencies(rsock_shared rsock_cargo)

add_library(rsock::rsock ALIAS rsock_static)
add_library(rsock::rsock_shared ALIAS rsock_shared)

# The OpenSSL adapter is header-only (include/rsock_openssl.h): rsock links
# no TLS library. rsock::openssl adds OpenSSL for a program that includes
# it; link it together with rsock::rsock or rsock::rsock_shared.
find_package(OpenSSL 1.1.1 QUIET)
if(OPENSSL_FOUND)
  # Visible to the projects that add rsock with add_subdirectory.
  set_target_properties(OpenSSL::SSL OpenSSL::Crypto PROPERTIES IMPORTED_GLOBAL TRUE)
  add_library(rsock_openssl INTERFACE)
  target_link_libraries(rsock_openssl INTERFACE OpenSSL::SSL)
  add_library(rsock::openssl ALIAS rsock_openssl)
endif()
