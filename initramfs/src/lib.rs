//! Building lifeboat's initramfs: a reproducible newc cpio archive holding
//! PID 1, the baked config and the kernel modules the targets need, in load
//! order, optionally compressed with zstd for the kernel's unpacker.

#![deny(unsafe_code)]

pub mod cpio;
pub mod image;
pub mod modules;

pub use image::{build_image, Compression, Image, ImageError, ImageSpec};
