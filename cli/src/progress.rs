//! Progress bars for long work, on standard error, and only for a person
//! watching a terminal: a script's logs get the summary lines alone.

use std::io::{self, IsTerminal};
use std::os::unix::fs::MetadataExt;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-counting bar of `total` bytes, hidden unless standard error is a
/// person's terminal.
pub fn bytes(total: u64, message: &'static str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg:>13} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// Whether standard error is a pseudo-terminal (ssh, a terminal emulator)
/// or a virtual console. Not the system console nor a serial line: run as
/// the core collector of kdump-utils, whose output goes to /dev/console,
/// a bar redrawn many times a second would flood a 115200-baud serial
/// console and the logs that record it.
fn interactive() -> bool {
    if !io::stderr().is_terminal() {
        return false;
    }
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    let (major, minor) = device_numbers(meta.rdev());
    // Unix98 pseudo-terminals are majors 136-143; virtual consoles are
    // major 4, minors 0-63 (64 and up are the serial ports ttyS*).
    (136..=143).contains(&major) || (major == 4 && minor < 64)
}

/// Major and minor of a Linux `dev_t` (glibc's gnu_dev_major/minor).
fn device_numbers(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::device_numbers;

    #[test]
    fn device_numbers_decode() {
        let cases = [
            (0x0501, (5, 1)),        // /dev/console
            (0x0440, (4, 64)),       // /dev/ttyS0
            (0x8803, (136, 3)),      // /dev/pts/3
            (0x10_8800, (136, 256)), // /dev/pts/256
        ];
        for (rdev, expected) in cases {
            assert_eq!(device_numbers(rdev), expected, "{rdev:#x}");
        }
    }
}
