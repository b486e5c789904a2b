//! Reading a vmcore and streaming it, compressed, to where it must go.
//!
//! Everything here runs both inside the capture kernel (as part of PID 1) and
//! on a normal host (the `lifeboat` command), so inputs are passed in as
//! readers and paths, never found by convention.

#![deny(unsafe_code)]

pub mod bytes;
pub mod elf;
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
