//! The reports `inspect` and `verify` print: one fact a line, a label
//! column then the value, written to standard output in one go.

use std::fmt::Display;
use std::io::{self, Write};

use anyhow::{Context, Result};

/// Width of the label column.
const LABEL_WIDTH: usize = 14;

#[derive(Default)]
pub struct Report {
    text: String,
}

impl Report {
    /// A report of text already laid out, such as JSON.
    pub fn raw(text: String) -> Self {
        Report { text }
    }

    pub fn line(&mut self, label: &str, value: impl Display) {
        // A label as wide as the column still needs a space after it.
        let width = LABEL_WIDTH.max(label.len() + 1);
        self.text.push_str(&format!("{label:<width$}{value}\n"));
    }

    /// Prints the report. A reader that went away (`lifeboat verify DUMP |
    /// head -1`) is not an error: the exit status must still say what the
    /// command found.
    pub fn print(&self) -> Result<()> {
        let mut stdout = io::stdout().lock();
        match stdout
            .write_all(self.text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            result => result.context("cannot write to standard output"),
        }
    }
}
