#!/bin/sh
# Builds the reference documentation from the headers' own comments:
#
#   docs/reference/build.sh OUTDIR
#
# OUTDIR/html/   HTML for rsock.h and rsock.hpp (Doxygen)
# OUTDIR/man/man3/  one page per function, type and macro of rsock.h
#                   (rsock_recv.3, rsock_token.3, ...) and rsock.3, the
#                   overview (docs/reference/man.py, from Doxygen's XML)
#
# rsock.h is checked with Doxygen's warnings as errors: every function,
# type and macro documented, every parameter and every return value too.
# The header's comments are the Rust doc comments of src/ffi.rs (cbindgen
# copies them; `make header`), with a "Parameters:" list and a "Returns:"
# line (docs/reference/filter.awk turns them into \param and \return).
# Each man page is then rendered with `man -l` (or groff), whose warnings
# fail the build too. Needs doxygen, python3, and man-db or groff.
set -eu
out=${1:?usage: docs/reference/build.sh OUTDIR}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
command -v doxygen >/dev/null || { echo "doxygen not found" >&2; exit 2; }
rm -rf "$out/xml" "$out/html" "$out/man" "$out/strict-html" "$out"/warnings*.txt

# 1. rsock.h, strict: XML for the man pages.
rc=0
{
  cat docs/reference/Doxyfile
  echo "INPUT = include/rsock.h"
  echo "PROJECT_NUMBER = $version"
  echo "GENERATE_XML = YES"
  echo "XML_OUTPUT = $out/xml"
  # (Doxygen checks parameters only while writing a format like HTML.)
  echo "GENERATE_HTML = YES"
  echo "HTML_OUTPUT = $out/strict-html"
  echo "OUTPUT_DIRECTORY = $out"
  echo "WARN_AS_ERROR = FAIL_ON_WARNINGS"
  echo "WARN_LOGFILE = $out/warnings.txt"
} | doxygen - >/dev/null || rc=$?
if [ -s "$out/warnings.txt" ]; then
  echo "include/rsock.h: what its documentation lacks. Fix the doc comments in"
  echo "src/ffi.rs (a 'Parameters:' list naming every parameter, a 'Returns:'"
  echo "line for every function that returns a value), then run 'make header':"
  sed 's/^/  /' "$out/warnings.txt"
  exit 1
fi
[ "$rc" -eq 0 ] || { echo "doxygen failed ($rc)" >&2; exit 1; }
rm -rf "$out/strict-html"

# 2. HTML for rsock.h and rsock.hpp (whose members the C++ header documents
# in prose: listed, not checked).
{
  cat docs/reference/Doxyfile
  echo "INPUT = include/rsock.h include/rsock.hpp"
  echo "PROJECT_NUMBER = $version"
  echo "EXTRACT_ALL = YES"
  echo "GENERATE_HTML = YES"
  echo "HTML_OUTPUT = $out/html"
  echo "OUTPUT_DIRECTORY = $out"
  echo "WARN_LOGFILE = $out/warnings-html.txt"
} | doxygen - >/dev/null

# 3. The man pages, each rendered once to check it.
python3 docs/reference/man.py "$out/xml" "$out/man/man3" "$version"
bad=0
for page in "$out"/man/man3/*.3; do
  if command -v man >/dev/null 2>&1; then
    msgs=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || echo "man failed")
  else
    msgs=$(groff -man -ww -z "$page" 2>&1 || echo "groff failed")
  fi
  if [ -n "$msgs" ]; then
    echo "$page: $msgs"
    bad=1
  fi
done
[ "$bad" -eq 0 ]
echo "reference documentation: $out/html/index.html and $(ls "$out/man/man3" | wc -l) man pages in $out/man/man3"
