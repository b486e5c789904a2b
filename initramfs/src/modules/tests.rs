//! Tests of module resolution against synthetic trees, read directly and
//! through the output of Debian's depmod.

use std::collections::HashMap;
use std::fs;
use std::process::Command;

use super::index::glob_matches;
use super::test_elf::{self, module, object};
use super::*;

/// A synthetic module: file path under the tree, `depends=`, other
/// `.modinfo` strings.
type Spec = (&'static str, &'static str, &'static [&'static str]);

/// A small tree shaped like Debian's virtio and xfs modules.
const TREE: &[Spec] = &[
    ("kernel/drivers/virtio/virtio_ring.ko", "", &[]),
    ("kernel/drivers/virtio/virtio.ko", "virtio_ring", &[]),
    ("kernel/drivers/virtio/virtio_pci_modern_dev.ko", "", &[]),
    ("kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "", &[]),
    (
        "kernel/drivers/virtio/virtio_pci.ko",
        "virtio_ring,virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio",
        &[],
    ),
    (
        "kernel/drivers/block/virtio_blk.ko",
        "virtio,virtio_ring",
        &[],
    ),
    (
        "kernel/drivers/char/hw_random/virtio-rng.ko",
        "virtio,virtio_ring",
        &[],
    ),
    ("kernel/lib/libcrc32c.ko", "", &["softdep=pre: crc32c"]),
    ("kernel/fs/xfs/xfs.ko", "libcrc32c", &[]),
    ("kernel/fs/fat/fat.ko", "", &[]),
    ("kernel/fs/fat/vfat.ko", "fat", &[]),
    ("kernel/fs/nls/nls_cp437.ko", "", &[]),
    ("kernel/fs/nls/nls_ascii.ko", "", &[]),
    ("kernel/fs/nls/nls_utf8.ko", "", &[]),
    (
        "kernel/crypto/sha256_ssse3.ko",
        "",
        &["softdep=pre: sha256_generic"],
    ),
    ("kernel/crypto/sha256_generic.ko", "", &[]),
    ("kernel/lib/helper.ko", "", &[]),
    (
        "kernel/fs/pre_user.ko",
        "",
        &["softdep=pre: helper post: missing_one"],
    ),
];

/// Modules whose `.modinfo` is broken in ways depmod would not write
/// into modules.dep.
const BROKEN: &[Spec] = &[
    ("kernel/loop/loop_a.ko", "loop_b", &[]),
    ("kernel/loop/loop_b.ko", "loop_a", &[]),
    ("kernel/lib/needs_ghost.ko", "ghost", &[]),
];

fn stem(path: &str) -> String {
    canonical_name(path.rsplit('/').next().unwrap().trim_end_matches(".ko"))
}

/// Writes the tree; each module exports `sym_<name>` and uses the symbol
/// of each dependency, so depmod derives the same dependencies.
fn write_tree(dir: &Path, specs: &[Spec]) {
    for (path, depends, extra) in specs {
        let name = stem(path);
        let mut info = vec![format!("name={name}"), format!("depends={depends}")];
        info.extend(extra.iter().map(|s| s.to_string()));
        let info: Vec<&str> = info.iter().map(String::as_str).collect();
        let export = format!("sym_{name}");
        let uses: Vec<String> = depends
            .split(',')
            .filter(|d| !d.is_empty())
            .map(|d| format!("sym_{d}"))
            .collect();
        let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
        let file = dir.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, module(&info, &[&export], &uses)).unwrap();
    }
    fs::write(
        dir.join("modules.builtin"),
        "kernel/fs/ext4/ext4.ko\nkernel/crypto/crc32c_generic.ko\n",
    )
    .unwrap();
    // As the kernel's build writes it: the `.modinfo` of built-in modules.
    fs::write(
        dir.join("modules.builtin.modinfo"),
        "ext4.alias=fs-ext4\0ext4.license=GPL\0crc32c_generic.alias=crypto-crc32c\0\
         crc32c_generic.alias=crc32c\0",
    )
    .unwrap();
}

fn names(modules: &[Module]) -> Vec<&str> {
    modules.iter().map(|m| m.name.as_str()).collect()
}

/// Checks that `order` puts every module after its dependencies.
fn assert_topological(tree: &ModuleTree, order: &[Module]) {
    let position: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    for (index, module) in order.iter().enumerate() {
        let loaded = tree
            .load(&module.name, tree.files.get(&module.name).unwrap())
            .unwrap();
        for dep in loaded.depends.iter().chain(&loaded.softdeps) {
            if let Some(&dep_index) = position.get(dep.as_str()) {
                assert!(dep_index < index, "{dep} after {}", module.name);
            }
        }
    }
}

/// (requested, expected load order or the error's text). The order is
/// the one the `.modinfo` path gives; with modules.dep, depmod's order of
/// dependencies may give another valid order.
type Case = (
    &'static [&'static str],
    Result<&'static [&'static str], &'static str>,
);

const CASES: &[Case] = &[
    (
        &["virtio_blk"],
        Ok(&[
            "virtio_ring",
            "virtio_pci_modern_dev",
            "virtio_pci_legacy_dev",
            "virtio",
            "virtio_pci",
            "virtio_blk",
        ]),
    ),
    (&["xfs"], Ok(&["libcrc32c", "xfs"])),
    (
        &["vfat"],
        Ok(&["nls_cp437", "nls_ascii", "nls_utf8", "fat", "vfat"]),
    ),
    (&["ext4"], Ok(&[])),
    (&["fs-ext4", "crypto-crc32c"], Ok(&[])),
    (&["sha256-ssse3"], Ok(&["sha256_generic", "sha256_ssse3"])),
    (&["pre_user"], Ok(&["helper", "pre_user"])),
    (
        &["virtio-rng", "virtio_blk"],
        Ok(&[
            "virtio_ring",
            "virtio_pci_modern_dev",
            "virtio_pci_legacy_dev",
            "virtio",
            "virtio_pci",
            "virtio_rng",
            "virtio_blk",
        ]),
    ),
    (
        &["nosuch"],
        Err("module `nosuch` is neither a module file, built in, nor an alias of either, in "),
    ),
];

/// A tree shaped like Debian's generic kernel, where ext4 and crc32c are
/// modules and the softdeps name crc32c by its aliases.
const GENERIC_TREE: &[Spec] = &[
    (
        "kernel/crypto/crc32c_generic.ko",
        "",
        &[
            "alias=crypto-crc32c",
            "alias=crc32c",
            "alias=crc32c-generic",
        ],
    ),
    (
        "kernel/arch/x86/crypto/crc32c-intel.ko",
        "",
        &[
            "alias=crypto-crc32c",
            "alias=crc32c",
            "alias=crc32c-intel",
            "alias=cpu:type:x86,ven*fam*mod*:feature:*0094*",
        ],
    ),
    ("kernel/lib/crc16.ko", "", &[]),
    ("kernel/fs/mbcache.ko", "", &[]),
    (
        "kernel/fs/jbd2/jbd2.ko",
        "",
        &["softdep=pre: crypto-crc32c"],
    ),
    (
        "kernel/fs/ext4/ext4.ko",
        "crc16,mbcache,jbd2",
        &[
            "softdep=pre: crypto-crc32c",
            "alias=fs-ext4",
            "alias=fs-ext3",
        ],
    ),
    ("kernel/lib/libcrc32c.ko", "", &["softdep=pre: crc32c"]),
    ("kernel/fs/xfs/xfs.ko", "libcrc32c", &["alias=fs-xfs"]),
    ("kernel/crypto/sha256_generic.ko", "", &["alias=sha256"]),
    // An accelerated implementation that needs a module nothing else does.
    ("kernel/crypto/sha256_helper.ko", "", &[]),
    (
        "kernel/crypto/sha256_fancy.ko",
        "sha256_helper",
        &["alias=sha256"],
    ),
];

const GENERIC_CASES: &[Case] = &[
    (
        &["ext4"],
        Ok(&[
            "crc32c_generic",
            "crc32c_intel",
            "crc16",
            "mbcache",
            "jbd2",
            "ext4",
        ]),
    ),
    (
        &["fs-ext3"],
        Ok(&[
            "crc32c_generic",
            "crc32c_intel",
            "crc16",
            "mbcache",
            "jbd2",
            "ext4",
        ]),
    ),
    (
        &["fs-xfs"],
        Ok(&["crc32c_generic", "crc32c_intel", "libcrc32c", "xfs"]),
    ),
    (&["crc32c"], Ok(&["crc32c_generic", "crc32c_intel"])),
    (&["crc32c-intel"], Ok(&["crc32c_intel"])),
    (&["sha256"], Ok(&["sha256_generic"])),
    (
        &["fs-nosuch"],
        Err("module `fs_nosuch` is neither a module file, built in, nor an alias"),
    ),
];

const BROKEN_CASES: &[Case] = &[
    (
        &["needs_ghost"],
        Err("module `ghost` (needed by `needs_ghost`) is neither"),
    ),
    (&["loop_a"], Err("cycle: loop_a -> loop_b -> loop_a")),
];

fn check_cases(tree: &ModuleTree, cases: &[Case], exact_order: bool) {
    for (requested, expected) in cases {
        let requested: Vec<String> = requested.iter().map(|s| s.to_string()).collect();
        match (tree.resolve(&requested), expected) {
            (Ok(order), Ok(want)) => {
                let mut got = names(&order);
                let mut want = want.to_vec();
                if !exact_order {
                    got.sort_unstable();
                    want.sort_unstable();
                }
                assert_eq!(got, want, "{requested:?}");
                assert_topological(tree, &order);
            }
            (Err(error), Err(needle)) => {
                assert!(error.to_string().contains(needle), "{requested:?}: {error}")
            }
            (got, want) => panic!("{requested:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn closures_from_modinfo() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), TREE);
    let tree = ModuleTree::open(dir.path()).unwrap();
    assert!(!tree.has_modules_dep());
    assert_eq!(tree.lookup("ext4").unwrap(), Lookup::Builtin("ext4".into()));
    assert_eq!(
        tree.lookup("virtio-rng").unwrap(),
        Lookup::File("virtio_rng".into())
    );
    check_cases(&tree, CASES, true);
    write_tree(dir.path(), BROKEN);
    let tree = ModuleTree::open(dir.path()).unwrap();
    check_cases(&tree, BROKEN_CASES, true);
}

/// A module too big to come along as a further match of an alias.
fn write_big_module(dir: &Path) {
    let path = dir.join("kernel/crypto/sha256_huge.ko");
    let info = test_elf::modinfo_section(&["name=sha256_huge", "depends=", "alias=sha256"]);
    fs::write(
        path,
        object(&[(".modinfo", 1, info), (".text", 1, vec![0x90; 100 << 10])]),
    )
    .unwrap();
}

#[test]
fn aliases_from_modinfo() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), GENERIC_TREE);
    write_big_module(dir.path());
    fs::write(dir.path().join("modules.builtin"), "kernel/lib/crc32.ko\n").unwrap();
    fs::remove_file(dir.path().join("modules.builtin.modinfo")).unwrap();
    let tree = ModuleTree::open(dir.path()).unwrap();
    check_cases(&tree, GENERIC_CASES, true);
    let lookups = [
        ("ext4", Lookup::File("ext4".into())),
        ("crc32", Lookup::Builtin("crc32".into())),
        (
            "crypto-crc32c",
            Lookup::Alias(vec!["crc32c_generic".into(), "crc32c_intel".into()]),
        ),
        (
            "sha256",
            Lookup::Alias(vec![
                "sha256_generic".into(),
                "sha256_fancy".into(),
                "sha256_huge".into(),
            ]),
        ),
        ("fs-btrfs", Lookup::Missing),
    ];
    for (name, want) in lookups {
        assert_eq!(tree.lookup(name).unwrap(), want, "{name}");
    }
}

#[test]
fn builtin_aliases_need_no_file() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), TREE);
    let tree = ModuleTree::open(dir.path()).unwrap();
    assert_eq!(
        tree.lookup("fs-ext4").unwrap(),
        Lookup::Builtin("ext4".into())
    );
    assert_eq!(
        tree.lookup("crypto-crc32c").unwrap(),
        Lookup::Builtin("crc32c_generic".into())
    );
    // A module file of the same name as a built-in alias is still a file.
    assert_eq!(tree.lookup("xfs").unwrap(), Lookup::File("xfs".into()));
}

#[test]
fn closures_from_depmod_output() {
    let (_dir, modules_dir) = depmod_tree(TREE, |_| {});
    let dep = fs::read_to_string(modules_dir.join("modules.dep")).unwrap();
    assert!(
        dep.contains("kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko"),
        "depmod did not see the symbols: {dep}"
    );
    // Without .modinfo `depends=`, the dependencies must come from
    // modules.dep alone: blank them out of every module.
    for (path, _, _) in TREE {
        let file = modules_dir.join(path);
        let name = stem(path);
        let export = format!("sym_{name}");
        let extra: Vec<&str> = TREE.iter().find(|(p, _, _)| p == path).unwrap().2.to_vec();
        let mut info = vec![format!("name={name}")];
        info.extend(extra.iter().map(|s| s.to_string()));
        let info: Vec<&str> = info.iter().map(String::as_str).collect();
        fs::write(file, module(&info, &[&export], &[])).unwrap();
    }
    let tree = ModuleTree::open(&modules_dir).unwrap();
    assert!(tree.has_modules_dep());
    check_cases(&tree, CASES, false);
}

#[test]
fn aliases_from_depmod_output() {
    let (_dir, modules_dir) = depmod_tree(GENERIC_TREE, |modules_dir| {
        write_big_module(modules_dir);
        fs::write(modules_dir.join("modules.builtin"), "").unwrap();
        fs::remove_file(modules_dir.join("modules.builtin.modinfo")).unwrap();
    });
    let aliases = fs::read_to_string(modules_dir.join("modules.alias")).unwrap();
    assert!(
        aliases.contains("alias crypto-crc32c crc32c_generic"),
        "{aliases}"
    );
    // Every module must come from the index: take `.modinfo` away.
    for (path, _, _) in GENERIC_TREE {
        let name = stem(path);
        fs::write(
            modules_dir.join(path),
            module(&[&format!("name={name}")], &[&format!("sym_{name}")], &[]),
        )
        .unwrap();
    }
    let tree = ModuleTree::open(&modules_dir).unwrap();
    check_cases(&tree, GENERIC_CASES, false);
}

/// A tree of `specs` under `<tmp>/lib/modules/<release>`, changed by
/// `adjust`, then indexed by Debian's depmod; the directory lives as long
/// as the returned guard.
fn depmod_tree(specs: &[Spec], adjust: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let release = "6.1.0-lifeboat-test";
    let modules_dir = dir.path().join("lib/modules").join(release);
    write_tree(&modules_dir, specs);
    adjust(&modules_dir);
    run_depmod(dir.path(), release);
    (dir, modules_dir)
}

/// Runs Debian's depmod on `base/lib/modules/<release>`.
fn run_depmod(base: &Path, release: &str) {
    let status = Command::new("depmod")
        .arg("-b")
        .arg(base)
        .arg(release)
        .status()
        .or_else(|_| {
            Command::new("/sbin/depmod")
                .arg("-b")
                .arg(base)
                .arg(release)
                .status()
        })
        .expect("depmod (Debian package kmod) must be installed");
    assert!(status.success());
}

#[test]
fn compressed_modules_are_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), TREE);
    let original = fs::read(dir.path().join("kernel/fs/xfs/xfs.ko")).unwrap();
    // The kernel's own build compresses with these options.
    let tools: &[(&str, &[&str], &str)] = &[
        ("xz", &["--check=crc32", "--lzma2=dict=1MiB"], "xz-utils"),
        ("xz", &[], "xz-utils"),
        ("zstd", &["-q", "-19", "--rm"], "zstd"),
    ];
    for (tool, args, package) in tools {
        for path in ["kernel/fs/xfs/xfs.ko", "kernel/lib/libcrc32c.ko"] {
            let file = dir.path().join(path);
            let status = Command::new(tool)
                .args(*args)
                .arg("-f")
                .arg(&file)
                .status()
                .unwrap_or_else(|e| panic!("{tool} (Debian package {package}): {e}"));
            assert!(status.success());
        }
        let tree = ModuleTree::open(dir.path()).unwrap();
        let order = tree.resolve(&["xfs".to_owned()]).unwrap();
        assert_eq!(names(&order), ["libcrc32c", "xfs"], "{tool} {args:?}");
        assert_eq!(order[1].contents, original);
        assert!(order[1]
            .source
            .to_string_lossy()
            .ends_with(if *tool == "xz" { ".xz" } else { ".zst" }));
        // Back to plain files for the next tool.
        for path in ["kernel/fs/xfs/xfs.ko", "kernel/lib/libcrc32c.ko"] {
            let compressed = order
                .iter()
                .find(|m| path.ends_with(&format!("{}.ko", m.name)))
                .unwrap();
            fs::write(dir.path().join(path), &compressed.contents).unwrap();
            fs::remove_file(&compressed.source).unwrap();
        }
    }
}

#[test]
fn damaged_compressed_module_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("bad.ko.xz"), b"not xz").unwrap();
    fs::write(dir.path().join("old.ko.gz"), b"").unwrap();
    let tree = ModuleTree::open(dir.path()).unwrap();
    let error = tree.resolve(&["bad".to_owned()]).unwrap_err();
    assert!(
        matches!(&error, ModuleError::Decompress { path, .. } if path.ends_with("bad.ko.xz")),
        "{error}"
    );
    let error = tree.resolve(&["old".to_owned()]).unwrap_err();
    assert!(
        matches!(error, ModuleError::UnsupportedCompression { .. }),
        "{error}"
    );
}

#[test]
fn alias_patterns_match_as_fnmatch_does() {
    let cases: &[(&str, &str, bool)] = &[
        ("crc32c", "crc32c", true),
        ("crc32c", "crc32", false),
        ("fs_*", "fs_ext4", true),
        ("fs_*", "fs", false),
        ("*", "", true),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("cpu:type:x86,ven*fam*mod*:feature:*0094*", "crc32c", false),
        (
            "cpu:type:x86,ven*fam*mod*:feature:*0094*",
            "cpu:type:x86,ven0000fam0006mod003F:feature:,0094,",
            true,
        ),
        ("pci:v00001AF4d[0-9]*", "pci:v00001AF4d1000", true),
        ("pci:v00001AF4d[0-9]*", "pci:v00001AF4dX", false),
        ("x[!0-9]", "xa", true),
        ("x[!0-9]", "x5", false),
        ("x[^a]", "xb", true),
        ("x[]]", "x]", true),
        ("x[", "x[", true),
    ];
    for (pattern, text, want) in cases {
        assert_eq!(
            glob_matches(pattern.as_bytes(), text.as_bytes()),
            *want,
            "{pattern} vs {text}"
        );
    }
}

#[test]
fn alias_indexes_parse() {
    let aliases = parse_alias_file(
        "# Aliases extracted from modules themselves.\nalias crypto-crc32c crc32c_generic\n\
         alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\nalias lonely\n",
    );
    assert_eq!(
        aliases,
        [
            Alias::new("crypto_crc32c", "crc32c_generic"),
            Alias::new("pci:v00001AF4d*sv*sd*bc*sc*i*", "virtio_pci"),
        ]
    );
    assert_eq!(
        alias_matches(&aliases, "crypto_crc32c").collect::<Vec<_>>(),
        ["crc32c_generic"]
    );
    let builtin = parse_builtin_aliases(
        b"ext4.alias=fs-ext4\0ext4.license=GPL\0crc32c_generic.alias=crc32c\0\
          a.b.alias=x\0\xff.alias=y\0\0",
    );
    assert_eq!(
        builtin,
        [
            Alias::new("fs-ext4", "ext4"),
            Alias::new("crc32c", "crc32c_generic")
        ]
    );
    // `-` is `_` outside brackets only, where it makes a range.
    assert_eq!(
        Alias::new("crypto-crc32c[a-c]-x", "m"),
        Alias::new("crypto_crc32c[a-c]_x", "m")
    );
}

#[test]
fn index_files_parse() {
    let dep =
        "kernel/a.ko: kernel/b.ko.xz kernel/c-d.ko\nkernel/b.ko.xz:\nupdates/a.ko:\n\nnot a line\n";
    let (files, deps) = parse_modules_dep(dep);
    assert_eq!(files["a"], Path::new("kernel/a.ko"));
    assert_eq!(files["b"], Path::new("kernel/b.ko.xz"));
    assert_eq!(deps["a"], ["b", "c_d"]);
    assert_eq!(deps["b"], Vec::<String>::new());

    let softdep = "# comment\nsoftdep libcrc32c pre: crc32c post: x\nsoftdep  a-b pre: c d\n";
    let index = parse_softdep_file(softdep);
    assert_eq!(index["libcrc32c"], ["crc32c"]);
    assert_eq!(index["a_b"], ["c", "d"]);

    let builtin =
        parse_builtin("kernel/fs/ext4/ext4.ko\nkernel/arch/x86/events/amd/amd-uncore.ko\n\n");
    assert_eq!(
        builtin.into_iter().collect::<Vec<_>>(),
        ["amd_uncore", "ext4"]
    );

    let cases: &[(&str, &[&str])] = &[
        ("pre: a b", &["a", "b"]),
        ("post: a pre: b", &["b"]),
        ("pre: a-b post: c pre: d", &["a_b", "d"]),
        ("", &[]),
    ];
    for (value, want) in cases {
        assert_eq!(parse_softdep_pre(value), *want, "{value}");
    }
}

#[test]
fn elf_sections_are_found_or_rejected() {
    let good = object(&[
        (".text", 1, vec![0x90; 5]),
        (".modinfo", 1, b"a=b\0c=d=e\0".to_vec()),
    ]);
    assert_eq!(modinfo(&good).unwrap(), [("a", "b"), ("c", "d=e")]);
    assert_eq!(elf_section(&good, ".text").unwrap(), Some(&[0x90u8; 5][..]));
    assert_eq!(elf_section(&good, ".nothing").unwrap(), None);
    let without = object(&[(".text", 1, vec![1])]);
    assert_eq!(modinfo(&without).unwrap(), []);
    let big_endian = test_elf::object_with_order(&[(".modinfo", 1, b"a=b\0".to_vec())], true);
    assert_eq!(modinfo(&big_endian).unwrap(), [("a", "b")]);

    let mut bad_class = good.clone();
    bad_class[4] = 9;
    let mut table_out_of_range = good.clone();
    table_out_of_range[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut names_out_of_range = good.clone();
    names_out_of_range[0x3e] = 200;
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty", b"", "magic"),
        ("text", b"hello world", "magic"),
        ("class", &bad_class, "class"),
        ("cut header", &good[..40], "truncated"),
        ("table", &table_out_of_range, "out of range"),
        ("names", &names_out_of_range, "out of range"),
        ("cut body", &good[..good.len() - 10], "out of range"),
    ];
    for (what, bytes, needle) in cases {
        let error = modinfo(bytes).expect_err(what);
        assert!(error.contains(needle), "{what}: {error}");
    }
}

#[test]
fn elf_objects_made_by_gcc_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("m.c");
    fs::write(
        &source,
        "__attribute__((section(\".modinfo\"), used)) static const char a[] = \"depends=x,y\";\n\
         __attribute__((section(\".modinfo\"), used)) static const char b[] = \"name=m\";\n",
    )
    .unwrap();
    let object = dir.path().join("m.o");
    let output = Command::new("gcc")
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .output()
        .expect("gcc (Debian package gcc)");
    assert!(output.status.success(), "{output:?}");
    // The same object as ELF32, for 32-bit kernels.
    let object32 = dir.path().join("m32.o");
    let output = Command::new("objcopy")
        .args(["-O", "elf32-i386"])
        .arg(&object)
        .arg(&object32)
        .output()
        .expect("objcopy (Debian package binutils)");
    assert!(output.status.success(), "{output:?}");
    for object in [object, object32] {
        let bytes = fs::read(&object).unwrap();
        let info = modinfo(&bytes).unwrap();
        assert!(
            info.contains(&("depends", "x,y")) && info.contains(&("name", "m")),
            "{info:?}"
        );
    }
}
