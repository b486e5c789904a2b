//! Bakes build-time data into `init`: the default configuration (validated
//! here, so an invalid default fails the build with file, line and key) and
//! the version string, including the git commit when there is one.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());

    let default_path = manifest_dir.join("default.toml");
    println!("cargo::rerun-if-changed={}", default_path.display());
    let text = std::fs::read_to_string(&default_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", default_path.display()));
    let config = lifeboat_config::user::parse("init/default.toml", &text)
        .unwrap_or_else(|e| panic!("invalid default config: {e}"));
    std::fs::write(out_dir.join("default-config"), config.encode()).unwrap();

    // The commit makes a dump traceable to the exact PID 1 that wrote it.
    println!("cargo::rerun-if-env-changed=LIFEBOAT_VERSION_SUFFIX");
    let git_head = manifest_dir.join("../.git/HEAD");
    if git_head.exists() {
        println!("cargo::rerun-if-changed={}", git_head.display());
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&manifest_dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let version = match commit {
        Some(commit) => format!("{} ({commit})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_owned(),
    };
    println!("cargo::rustc-env=LIFEBOAT_VERSION={version}");
}
