#!/bin/sh
# The ABI of librsock.so against the committed baseline (libabigail,
# Debian: abigail-tools):
#
#   tests/abi.sh check      fails on an incompatible change (a function
#                           removed, a parameter or return type changed, ...)
#                           unless the SONAME changed with it; additions pass
#   tests/abi.sh baseline   rewrites abi/librsock.abi from this tree
#                           (`make abi-baseline`)
#
# The types come from the library's debug information, so this builds the
# shared library with it (target/abi; the shipped one is stripped). The
# exported functions are the same: cargo exports exactly the #[no_mangle]
# functions of src/ffi.rs, as cmake/slim.sh does.
#
# Regenerate the baseline when a release is made, and when an incompatible
# change comes with a new SONAME (the major version in Cargo.toml); new
# functions pass without it, but regenerating after adding some makes
# their removal fail later. Say what changed in CHANGELOG.md.
set -eu
cd "$(dirname "$0")/.."
mode=${1:?usage: tests/abi.sh check|baseline}
baseline=abi/librsock.abi

CARGO_PROFILE_RELEASE_DEBUG=true CARGO_PROFILE_RELEASE_STRIP=none \
CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo rustc --release --lib --crate-type cdylib --target-dir target/abi
so=target/abi/release/librsock.so
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')

dump() { abidw --no-show-locs --no-corpus-path --no-comp-dir-path "$so"; }

case $mode in
baseline)
  mkdir -p abi
  dump >"$baseline"
  echo "wrote $baseline ($soname, $(grep -c '<elf-symbol ' "$baseline") symbols)"
  ;;
check)
  [ -f "$baseline" ] || { echo "no $baseline: run make abi-baseline" >&2; exit 1; }
  old_soname=$(sed -n "s/.*<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$baseline" | head -n 1)
  dump >target/abi/current.abi
  rc=0
  abidiff --no-show-locs "$baseline" target/abi/current.abi >target/abi/abidiff.txt || rc=$?
  # abidiff's exit status: bit 1 error, 2 usage, 4 ABI change (additions
  # included), 8 incompatible change.
  if [ $((rc & 3)) -ne 0 ]; then
    cat target/abi/abidiff.txt
    echo "abidiff failed ($rc)" >&2
    exit 1
  fi
  # Incompatible: what abidiff calls so (a removed symbol), and any changed
  # function or variable (abidiff counts a parameter's new type as a mere
  # "change"); additions alone are compatible.
  if grep -Eq '(^|, )[1-9][0-9]* (Removed|Changed)' target/abi/abidiff.txt; then
    rc=$((rc | 8))
  fi
  if [ $((rc & 8)) -ne 0 ]; then
    cat target/abi/abidiff.txt
    if [ "$soname" != "$old_soname" ]; then
      echo "ABI: incompatible changes, with a new SONAME ($old_soname -> $soname): fine;"
      echo "run 'make abi-baseline' and commit $baseline"
      exit 0
    fi
    echo "ABI: incompatible change to $soname (see above). Keep the old functions"
    echo "and types as they were, or raise the major version (the SONAME) in"
    echo "Cargo.toml, say so in CHANGELOG.md and run 'make abi-baseline'." >&2
    exit 1
  fi
  if [ $((rc & 4)) -ne 0 ]; then
    cat target/abi/abidiff.txt
    echo "ABI: compatible additions to $soname (pass; 'make abi-baseline' records them)"
  else
    echo "ABI: $soname unchanged from $baseline"
  fi
  ;;
*)
  echo "usage: tests/abi.sh check|baseline" >&2
  exit 2
  ;;
esac
