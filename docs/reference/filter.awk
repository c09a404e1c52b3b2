# Doxygen input filter for rsock's headers (docs/reference/Doxyfile).
# - A header's opening "/*" comment becomes its \file comment.
# - In a doc comment, a line " * Parameters:" starts a list of
#   " * - `name`: description" items (continued by indented lines), which
#   become "\param name description", up to a blank " *" line or the end of
#   the comment; a line " * Returns: text" becomes "\return text".
# These are the forms the Rust doc comments in src/ffi.rs use, which
# cbindgen copies into include/rsock.h.
NR == 1 && $0 == "/*" { print "/** \\file"; next }
$0 == " * Parameters:" { params = 1; print " *"; next }
params && ($0 == " *" || $0 ~ /\*\//) { params = 0 }
params && $0 ~ /^ \* - `[A-Za-z_][A-Za-z0-9_]*`: / {
    rest = substr($0, 7)
    i = index(rest, "`")
    print " * \\param " substr(rest, 1, i - 1) " " substr(rest, i + 3)
    next
}
$0 ~ /^ \* Returns: / { print " * \\return " substr($0, 13); next }
{ print }
