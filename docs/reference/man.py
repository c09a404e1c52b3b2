#!/usr/bin/env python3
"""Writes rsock's section-3 man pages from Doxygen's XML of rsock.h.

    docs/reference/man.py XMLDIR MANDIR VERSION

One page per function, type and macro (rsock_recv.3, rsock_token.3,
RSOCK_INFINITE.3, ...), each with NAME, SYNOPSIS, DESCRIPTION, PARAMETERS,
RETURN VALUE and SEE ALSO, and rsock.3: the header's own description (the
conventions) and the list of pages. Run by docs/reference/build.sh.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

xmldir, mandir, version = sys.argv[1:4]
root = ET.parse(os.path.join(xmldir, "rsock_8h.xml")).getroot()
compound = root.find("compounddef")
DATE = os.environ.get("SOURCE_DATE_EPOCH_DATE", "")
FOOTER = '"rsock %s" "rsock manual"' % version


def esc(text):
    """Escapes text for roff (not at a line start: see lines())."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def inline(el):
    """Inline content of a <para> (or part of it) as roff text."""
    out = [esc(el.text or "")]
    for child in el:
        tag = child.tag
        if tag in ("computeroutput", "bold"):
            out.append("\\fB" + inline(child) + "\\fR")
        elif tag == "emphasis":
            out.append("\\fI" + inline(child) + "\\fR")
        elif tag == "ref":
            out.append("\\fB" + inline(child) + "\\fR")
        elif tag in ("parameterlist", "simplesect", "itemizedlist", "orderedlist", "programlisting"):
            pass  # handled as blocks
        elif tag == "linebreak":
            out.append("\n.br\n")
        else:
            out.append(inline(child))
        out.append(esc(child.tail or ""))
    return "".join(out)


def lines(text):
    """roff lines: whitespace collapsed, no line starting with . or '."""
    text = re.sub(r"[ \t]*\n[ \t]*", " ", text.strip())
    text = re.sub(r"[ \t]+", " ", text)
    text = text.replace(" \n.br\n ", "\n.br\n")
    res = []
    for line in text.split("\n"):
        if line.startswith((".", "'")) and line != ".br":
            line = "\\&" + line
        res.append(line)
    return "\n".join(res)


def blocks(desc, sections):
    """The paragraphs of a description; parameter lists and \\return
    sections go to `sections` ('params': [(name, text)], 'return': [text])."""
    out = []
    for para in desc.findall("para"):
        text = lines(inline(para))
        if text:
            out.append(".PP\n" + text)
        for child in para:
            if child.tag == "parameterlist" and child.get("kind") == "param":
                for item in child.findall("parameteritem"):
                    names = [n.text for n in item.iter("parametername")]
                    d = item.find("parameterdescription")
                    sections.setdefault("params", []).append(
                        (", ".join(names), " ".join(lines(inline(p)) for p in d.findall("para"))))
            elif child.tag == "simplesect" and child.get("kind") == "return":
                sections.setdefault("return", []).append(
                    " ".join(lines(inline(p)) for p in child.findall("para")))
            elif child.tag in ("itemizedlist", "orderedlist"):
                for li in child.findall("listitem"):
                    body = "\n.br\n".join(lines(inline(p)) for p in li.findall("para"))
                    out.append(".IP \\(bu 2\n" + body)
            elif child.tag == "programlisting":
                code = []
                for codeline in child.findall("codeline"):
                    code.append(esc("".join(codeline.itertext())))
                out.append(".PP\n.nf\n.RS 4\n" + "\n".join("\\&" + c for c in code) + "\n.RE\n.fi")
    return out


def plain(el):
    return "".join(el.itertext()) if el is not None else ""


members = [m for m in compound.iter("memberdef") if m.get("kind") in ("function", "typedef", "define")]
names = sorted(m.find("name").text for m in members)
os.makedirs(mandir, exist_ok=True)


def see_also(name, text):
    """rsock(3) and the pages of the names the page mentions."""
    mentioned = []
    for n in re.findall(r"(?:rsock|RSOCK)_[A-Za-z0-9_]+", text.replace("\\-", "-")):
        if n in names and n != name and n not in mentioned:
            mentioned.append(n)
    refs = ["rsock"] + mentioned
    return ".SH SEE ALSO\n" + ",\n".join(".BR %s (3)" % r for r in refs) + "\n"


def synopsis(m):
    kind = m.get("kind")
    name = m.find("name").text
    if kind == "function":
        params = m.findall("param")
        ret = plain(m.find("type")).strip()
        sep = "" if ret.endswith("*") else " "
        if not params or (len(params) == 1 and plain(params[0].find("type")).strip() == "void"):
            return "%s%s\\fB%s\\fR(void);" % (esc(ret), sep, name)
        args = []
        for p in params:
            t = plain(p.find("type")).strip()
            d = p.find("declname").text
            args.append("%s%s\\fI%s\\fR" % (esc(t), "" if t.endswith("*") else " ", d))
        head = "%s%s\\fB%s\\fR(" % (esc(ret), sep, name)
        pad = " " * (len(ret) + len(sep) + len(name) + 1)
        return head + (",\n" + pad).join(args) + ");"
    if kind == "define":
        params = m.findall("param")
        p = "(" + ", ".join(plain(x) for x in params) + ")" if params else ""
        return "#define \\fB%s\\fR%s %s" % (name, esc(p), esc(plain(m.find("initializer"))))
    return esc(plain(m.find("definition"))) + ";"


count = 0
for m in members:
    name = m.find("name").text
    sections = {}
    brief = " ".join(lines(inline(p)) for p in m.find("briefdescription").findall("para"))
    body = blocks(m.find("detaileddescription"), sections)
    what = {"function": "", "typedef": " (type)", "define": " (macro)"}[m.get("kind")]
    page = ['.TH %s 3 "%s" %s' % (name.upper() if name.islower() else name, DATE, FOOTER)]
    page.append(".SH NAME\n%s \\- %s" % (esc(name), (brief or "rsock " + m.get("kind")).rstrip()))
    page.append(".SH SYNOPSIS\n.nf\n.B #include <rsock.h>\n.PP\n%s\n.fi" % synopsis(m))
    if m.get("kind") == "function":
        page.append(".PP\nLink with \\fI\\-lrsock\\fR (or \\fIpkg\\-config \\-\\-libs rsock\\fR).")
    page.append(".SH DESCRIPTION\n" + (brief and ".PP\n" + brief + "\n") + "\n".join(body))
    if sections.get("params"):
        page.append(".SH PARAMETERS\n" + "\n".join(".TP\n.I %s\n%s" % (esc(n), d) for n, d in sections["params"]))
    if sections.get("return"):
        page.append(".SH RETURN VALUE\n" + "\n.PP\n".join(sections["return"]))
    page.append(see_also(name, "\n".join(page[1:])))
    text = "\n".join(page).replace("\n\n", "\n")
    with open(os.path.join(mandir, name + ".3"), "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    count += 1

# rsock.3: the header's description and the list of pages.
sections = {}
overview = ['.TH RSOCK 3 "%s" %s' % (DATE, FOOTER),
            ".SH NAME\nrsock \\- blocking socket calls that any thread can cancel",
            ".SH SYNOPSIS\n.nf\n.B #include <rsock.h>\n.fi\n.PP\nLink with \\fI\\-lrsock\\fR "
            "(or \\fIpkg\\-config \\-\\-cflags \\-\\-libs rsock\\fR).",
            ".SH DESCRIPTION"]
overview += blocks(compound.find("briefdescription"), sections)
overview += [b for b in blocks(compound.find("detaileddescription"), sections)
             if "Generated by cbindgen" not in b]
for kind, title in (("function", "FUNCTIONS"), ("typedef", "TYPES"), ("define", "MACROS")):
    entries = sorted((m.find("name").text, " ".join(lines(inline(p)) for p in m.find("briefdescription").findall("para")))
                     for m in members if m.get("kind") == kind)
    overview.append(".SH " + title)
    for n, b in entries:
        overview.append(".TP\n.BR %s (3)\n%s" % (n, b))
overview.append(".SH SEE ALSO\nThe HTML reference (share/doc/rsock/html), README.md and docs/MIGRATING.md of the source.")
with open(os.path.join(mandir, "rsock.3"), "w") as f:
    f.write("\n".join(overview).replace("\n\n", "\n") + "\n")
print("man pages: %d in %s" % (count + 1, mandir))
