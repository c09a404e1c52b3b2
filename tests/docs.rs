//! The code listings in docs/MIGRATING.md (and the marked ones in the
//! README) are excerpts of the examples, which
//! `make test` and ctest compile and run. Each listing is preceded by a line
//! `<!-- excerpt: examples-c/FILE.c -->` and must appear in that file:
//! a `c` listing line for line, in order, with a line `/* ... */` standing
//! for omitted code; a `diff` listing by its `+` and context lines (its `-`
//! lines are the code being replaced).

use std::path::Path;

const MARKER: &str = "<!-- excerpt: ";

struct Listing {
    line: usize,
    source: Option<String>,
    lang: String,
    body: Vec<String>,
}

fn listings(doc: &str) -> Vec<Listing> {
    let mut out = Vec::new();
    let mut lines = doc.lines().enumerate();
    let mut last_text: Option<&str> = None;
    while let Some((i, line)) = lines.next() {
        if let Some(lang) = line.strip_prefix("```") {
            let source = last_text
                .and_then(|t| t.strip_prefix(MARKER))
                .and_then(|t| t.strip_suffix(" -->"))
                .map(str::to_owned);
            let body = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| !l.starts_with("```"))
                .map(|l| l.trim_end().to_owned())
                .collect();
            out.push(Listing {
                line: i + 1,
                source,
                lang: lang.trim().to_owned(),
                body,
            });
            last_text = None;
        } else if !line.trim().is_empty() {
            last_text = Some(line.trim());
        }
    }
    out
}

/// The runs of consecutive lines a listing claims are in its source.
fn runs(listing: &Listing) -> Vec<Vec<String>> {
    let mut runs = vec![Vec::new()];
    for line in &listing.body {
        let line = if listing.lang == "diff" {
            match line.chars().next() {
                Some('-') => continue,
                Some('+') | Some(' ') => line[1..].to_owned(),
                _ => line.clone(),
            }
        } else {
            line.clone()
        };
        if line.trim() == "/* ... */" {
            runs.push(Vec::new());
        } else {
            runs.last_mut().expect("runs is never empty").push(line);
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// Finds each run as consecutive lines of `source`, in order. Returns the
/// first run that is not there.
fn missing_run(source: &[&str], runs: &[Vec<String>]) -> Option<String> {
    let mut from = 0;
    for run in runs {
        let found = (from..source.len()).find(|&at| {
            run.iter()
                .enumerate()
                .all(|(k, l)| source.get(at + k) == Some(&l.as_str()))
        });
        match found {
            Some(at) => from = at + run.len(),
            None => return Some(run.join("\n")),
        }
    }
    None
}

/// Checks the marked `c`/`cpp`/`diff` listings of `doc` against their sources;
/// with `all`, every such listing must be marked. Returns how many it checked.
fn check_excerpts(doc: &str, all: bool) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
    let mut checked = 0;
    for listing in listings(&text)
        .iter()
        .filter(|l| matches!(l.lang.as_str(), "c" | "cpp" | "diff"))
    {
        let Some(source) = listing.source.as_deref() else {
            assert!(
                !all,
                "{doc}:{}: a {} listing without a `{}FILE -->` line before it",
                listing.line, listing.lang, MARKER
            );
            continue;
        };
        let text = std::fs::read_to_string(root.join(source))
            .unwrap_or_else(|e| panic!("{doc}:{}: {source}: {e}", listing.line));
        let text = text.lines().map(str::trim_end).collect::<Vec<_>>();
        let runs = runs(listing);
        assert!(!runs.is_empty(), "{doc}:{}: empty listing", listing.line);
        if let Some(run) = missing_run(&text, &runs) {
            panic!(
                "{doc}:{}: not found in {source} (in order):\n{run}",
                listing.line
            );
        }
        checked += 1;
    }
    checked
}

#[test]
fn migrating_listings_are_excerpts_of_the_examples() {
    assert!(
        check_excerpts("docs/MIGRATING.md", true) >= 6,
        "expected before/after listings for three steps"
    );
}

#[test]
fn readme_excerpts_match_the_examples() {
    assert!(check_excerpts("README.md", false) >= 2);
}

#[test]
fn the_checker_rejects_what_is_not_in_the_source() {
    let listing = |lang: &str, body: &[&str]| Listing {
        line: 1,
        source: None,
        lang: lang.to_owned(),
        body: body.iter().map(|s| s.to_string()).collect(),
    };
    let source = ["int a;", "int b;", "int c;", "int d;"];
    let ok = listing("c", &["int a;", "int b;", "/* ... */", "int d;"]);
    assert_eq!(missing_run(&source, &runs(&ok)), None);
    let gap = listing("c", &["int a;", "int c;"]);
    assert!(missing_run(&source, &runs(&gap)).is_some());
    let order = listing("c", &["int c;", "/* ... */", "int a;"]);
    assert!(missing_run(&source, &runs(&order)).is_some());
    let diff = listing("diff", &["-int old;", "+int b;", " int c;"]);
    assert_eq!(missing_run(&source, &runs(&diff)), None);
    let parsed = listings("<!-- excerpt: x.c -->\n\n```c\nint a;\n```\n```c\nint b;\n```\n");
    assert_eq!(parsed[0].source.as_deref(), Some("x.c"));
    assert_eq!(parsed[1].source, None);
}
