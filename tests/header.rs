//! The committed include/rsock.h must be exactly what cbindgen generates from
//! the sources. `RSOCK_BLESS=1 cargo test --test header` rewrites it.

use std::path::Path;

#[test]
fn header_matches_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_src(root.join("src/ffi.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = root.join("include/rsock.h");
    if std::env::var_os("RSOCK_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/rsock.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/rsock.h is stale: run `make header` (RSOCK_BLESS=1 cargo test --test header) and commit it"
    );
}
