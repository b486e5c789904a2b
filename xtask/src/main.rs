//! Project automation, run as `cargo xtask <command>` (an alias in
//! `.cargo/config.toml`). This file only dispatches; each command lives in
//! its own module with a `run` function.

mod apt;
mod bench;
mod ci;
mod deps;
mod dist;
mod fuzz;
mod guest;
mod qemu_test;
mod tidy;
mod util;

use anyhow::bail;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  dist                      build init and crashme (static musl) and the lifeboat CLI
                            into target/dist
  qemu-test [--list] [NAME...]
                            crash a QEMU guest and check lifeboat's dump of it;
                            no NAME runs every scenario
  bench [--quick] [--runs N]
                            compare lifeboat save with makedumpfile and zstd on
                            reference vmcores made under QEMU (slow; not in ci)
  makedumpfile              print the path of a makedumpfile built with zstd (which also
                            prints the printk caller column), fetching Debian trixie's
                            into target/bench through the machine's apt sources when
                            the installed one lacks zstd
  deps                      install the Debian packages the builds and tests need
  fuzz [--list] [--secs N] [TARGET...]
                            run the fuzz targets (default: all, 600 s each)
  ci                        the whole test suite: fmt, clippy, unit tests, every
                            qemu-test scenario (what .ci/run runs)";

fn main() {
    // The error chain, once, without the backtrace anyhow's Debug output
    // adds when RUST_BACKTRACE is set.
    if let Err(error) = run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    match command.as_deref() {
        Some("dist") => {
            util::no_arguments("dist", &rest)?;
            dist::run()
        }
        Some("qemu-test") => qemu_test::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("makedumpfile") => bench::makedumpfile(&rest),
        Some("deps") => {
            util::no_arguments("deps", &rest)?;
            deps::run()
        }
        Some("fuzz") => fuzz::run(&rest),
        Some("ci") => {
            util::no_arguments("ci", &rest)?;
            ci::run()
        }
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}
