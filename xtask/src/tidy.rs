//! Tidy checks, run as unit tests of xtask so that `cargo test` (and CI)
//! fails on them: every Rust file starts with module docs, every `unsafe`
//! block says why it is sound, and no test is switched off with the ignore
//! attribute.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::util::project_root;

    /// The project's Rust sources, build output and fuzz builds excluded.
    fn rust_files() -> Vec<PathBuf> {
        fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name();
                if name == "target" || name.to_string_lossy().starts_with('.') {
                    continue;
                }
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        walk(&project_root(), &mut found);
        assert!(found.len() > 20, "found only {found:?}");
        found
    }

    #[test]
    fn every_file_has_module_docs() {
        let missing: Vec<String> = rust_files()
            .iter()
            .filter(|path| {
                let text = std::fs::read_to_string(path).unwrap();
                !text.trim_start().starts_with("//!")
            })
            .map(|path| path.display().to_string())
            .collect();
        assert!(missing.is_empty(), "files without `//!` docs: {missing:#?}");
    }

    #[test]
    fn every_unsafe_block_has_a_safety_comment() {
        let mut missing = Vec::new();
        for path in rust_files() {
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            // Built from pieces so that this file does not match itself.
            let needle = ["unsafe", " {"].concat();
            for (index, line) in lines.iter().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if !code.contains(&needle) {
                    continue;
                }
                let window = &lines[index.saturating_sub(8)..=index];
                if !window.iter().any(|l| l.contains("SAFETY:")) {
                    missing.push(format!("{}:{}", path.display(), index + 1));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "unsafe blocks without `// SAFETY:`: {missing:#?}"
        );
    }

    #[test]
    fn no_test_is_ignored() {
        let needle = ["#[", "ignore"].concat();
        let ignored: Vec<String> = rust_files()
            .iter()
            .filter(|path| std::fs::read_to_string(path).unwrap().contains(&needle))
            .map(|path| path.display().to_string())
            .collect();
        assert!(ignored.is_empty(), "ignored tests in {ignored:#?}");
    }
}
