//! `cargo xtask ci`: the whole test suite, as `.ci/run` and the README run it.
//!
//! Formatting, lints (warnings are errors), every unit test of the
//! workspace, then every QEMU crash scenario. Each step stops the run when
//! it fails, cheapest first, so a typo fails in seconds rather than after a
//! VM run.

use anyhow::Result;

use crate::{deps, qemu_test, util};

pub fn run() -> Result<()> {
    deps::ensure(&[deps::BUILD, deps::QEMU_TEST, deps::UNIT_TEST, deps::SERVERS])?;
    step("cargo fmt --check");
    util::run(util::cargo().args(["fmt", "--all", "--check"]))?;
    step("cargo clippy");
    util::run(util::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // init is also built without its ssh client, and without network
    // targets at all (see `dist`).
    for features in [
        &["--no-default-features"][..],
        &["--no-default-features", "--features", "network"],
    ] {
        util::run(
            util::cargo()
                .args(["clippy", "--package", "init", "--all-targets"])
                .args(features)
                .args(["--", "-D", "warnings"]),
        )?;
    }
    step("cargo test");
    util::run(util::cargo().args(["test", "--workspace"]))?;
    step("qemu-test");
    qemu_test::run(&[])
}

fn step(name: &str) {
    eprintln!("\n=== ci: {name}");
}
