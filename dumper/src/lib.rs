//! Reading a vmcore and streaming it, compressed, to where it must go.
//!
//! Everything here runs both inside the capture kernel (as part of PID 1) and
//! on a normal host (the `lifeboat` command), so inputs are passed in as
//! readers and paths, never found by convention.

#![deny(unsafe_code)]

pub mod bytes;
pub mod elf;
pub mod filter;
pub mod output;
pub mod plan;
pub mod printk;
pub mod record;
pub mod seekable;
pub mod stream;
mod sys;
pub mod time;
pub mod vmcore;
pub mod vmcoreinfo;
pub mod xxh64;

/// An error and its sources, joined by ": ", on one line: for logs and
/// records, where an error is printed once with all its causes.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
