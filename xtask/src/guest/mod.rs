//! The guest toolkit that `qemu-test` and `bench` share: Debian kernels
//! fetched with apt, test disks with a filesystem made and read back by
//! its own tools, the capture and production images, and QEMU runs
//! watched on the serial console.

pub mod disk;
pub mod image;
pub mod kernel;
pub mod vm;
