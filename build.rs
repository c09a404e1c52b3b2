// Gives the shared library a versioned SONAME on ELF systems, so programs
// linked against it record `librsock.so.<major>` rather than a path.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd"
    ) {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,librsock.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
