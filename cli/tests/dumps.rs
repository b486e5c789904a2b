//! The dump commands, run as a user runs them: `lifeboat save` on a small
//! synthetic vmcore, then `verify`, `inspect --json`, `decompress`, and the
//! same on copies of the dump cut short.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dumper::elf::write;

const LIFEBOAT: &str = env!("CARGO_BIN_EXE_lifeboat");

const VMCOREINFO: &str = "OSRELEASE=6.1.0-test\n\
BUILD-ID=0123456789abcdef0123456789abcdef01234567\n\
PAGESIZE=4096\n\
CRASHTIME=1700000000\n";

/// Where the two PT_LOADs start in the file, and their sizes.
const FIRST_AT: u64 = 0x1000;
const FIRST_BYTES: u64 = 64 << 10;
const SECOND_AT: u64 = FIRST_AT + FIRST_BYTES;
const SECOND_BYTES: u64 = 192 << 10;
const SECOND_PADDR: u64 = 0x10_0000;

/// An ELF64 x86_64 core like a small /proc/vmcore: a PT_NOTE with
/// VMCOREINFO, then two PT_LOADs of memory, pages of data and pages of
/// zeroes.
fn synthetic_vmcore() -> Vec<u8> {
    let note = write::note(b"VMCOREINFO", 0, VMCOREINFO.as_bytes());
    // Memory: text-like pages, with every third page zero.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let memory: Vec<u8> = (0..(FIRST_BYTES + SECOND_BYTES) as usize)
        .map(|i| {
            if (i / 4096) % 3 == 2 {
                0
            } else {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % 26) as u8
            }
        })
        .collect();
    let (first, second) = memory.split_at(FIRST_BYTES as usize);
    let loads = [
        write::Load {
            vaddr: 0xffff_8880_0000_0000,
            paddr: 0,
            data: first,
            mem_size: FIRST_BYTES,
        },
        write::Load {
            vaddr: 0xffff_8880_0000_0000 + SECOND_PADDR,
            paddr: SECOND_PADDR,
            data: second,
            mem_size: SECOND_BYTES,
        },
    ];
    // Page-aligned memory, as in /proc/vmcore: the loads land at FIRST_AT
    // and SECOND_AT.
    let core = write::core_file(&note, &loads, 4096);
    assert_eq!(core.len() as u64, SECOND_AT + SECOND_BYTES);
    core
}

fn lifeboat(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut command = Command::new(LIFEBOAT);
    for arg in args {
        command.arg(arg);
    }
    command.output().expect("lifeboat runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit status, showing what the command printed if it is not.
fn expect_status(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    vmcore: Vec<u8>,
    vmcore_path: PathBuf,
    dump_path: PathBuf,
}

/// Saves the synthetic vmcore in frames of 4 KiB.
fn saved() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let vmcore = synthetic_vmcore();
    let vmcore_path = path.join("vmcore");
    fs::write(&vmcore_path, &vmcore).unwrap();
    let dump_path = path.join("dump.zst");
    let output = lifeboat(&[
        &"save",
        &"--frame-size",
        &"4096",
        &"--threads",
        &"2",
        &vmcore_path,
        &dump_path,
    ]);
    expect_status(&output, 0, "save");
    Setup {
        _dir: dir,
        dir: path,
        vmcore,
        vmcore_path,
        dump_path,
    }
}

/// The program headers of a core: (type, offset, paddr, filesz, memsz).
fn program_headers(core: &[u8]) -> Vec<(u32, u64, u64, u64, u64)> {
    let u64_at = |at: usize| u64::from_le_bytes(core[at..at + 8].try_into().unwrap());
    let phoff = u64_at(32) as usize;
    let phnum = u16::from_le_bytes([core[56], core[57]]) as usize;
    (0..phnum)
        .map(|i| {
            let at = phoff + i * 56;
            let p_type = u32::from_le_bytes(core[at..at + 4].try_into().unwrap());
            (
                p_type,
                u64_at(at + 8),
                u64_at(at + 24),
                u64_at(at + 32),
                u64_at(at + 40),
            )
        })
        .collect()
}

/// Cuts a copy of the dump at `len` bytes.
fn cut(setup: &Setup, name: &str, len: usize) -> PathBuf {
    let bytes = fs::read(&setup.dump_path).unwrap();
    let path = setup.dir.join(name);
    fs::write(&path, &bytes[..len]).unwrap();
    path
}

/// The compressed offset of the frame holding vmcore offset `at`, from
/// the seek table at the end of the dump.
fn frame_offset_for(dump: &[u8], at: u64) -> usize {
    let count = u32::from_le_bytes(dump[dump.len() - 9..dump.len() - 5].try_into().unwrap());
    let table = &dump[dump.len() - 9 - 12 * count as usize..dump.len() - 9];
    let (mut compressed, mut decompressed) = (0usize, 0u64);
    for entry in table.chunks_exact(12) {
        let c = u32::from_le_bytes(entry[0..4].try_into().unwrap()) as usize;
        let d = u64::from(u32::from_le_bytes(entry[4..8].try_into().unwrap()));
        if decompressed + d > at {
            return compressed;
        }
        compressed += c;
        decompressed += d;
    }
    panic!("offset {at} is beyond the dump");
}

fn tool_available(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn save_writes_a_private_dump_that_zstd_reads() {
    let setup = saved();
    let meta = fs::metadata(&setup.dump_path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(!setup.dir.join("dump.zst.incomplete").exists());
    if tool_available("zstd") {
        let output = Command::new("zstd")
            .args(["-d", "-c", "-q"])
            .arg(&setup.dump_path)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(
            output.stdout == setup.vmcore,
            "zstd -d gives the vmcore back"
        );
    } else {
        eprintln!("zstd is not installed: not comparing with the stock decoder");
    }
}

#[test]
fn save_summary_and_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let vmcore = synthetic_vmcore();
    let vmcore_path = dir.path().join("vmcore");
    fs::write(&vmcore_path, &vmcore).unwrap();
    // No OUTPUT: the dump goes to standard output, as kdump-utils pipes it
    // to ssh.
    let output = lifeboat(&[&"save", &"--frame-size", &"8192", &vmcore_path]);
    expect_status(&output, 0, "save to standard output");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{} bytes", vmcore.len())),
        "{stderr}"
    );
    assert!(stderr.contains("xxh64 "), "{stderr}");
    assert!(
        stderr.contains(&format!("{} frames", vmcore.len().div_ceil(8192))),
        "{stderr}"
    );
    let dump_path = dir.path().join("piped.zst");
    fs::write(&dump_path, &output.stdout).unwrap();
    let output = lifeboat(&[&"verify", &dump_path]);
    expect_status(&output, 0, "verify the piped dump");
}

#[test]
fn whole_dump_verifies_inspects_and_decompresses() {
    let setup = saved();
    let output = lifeboat(&[&"verify", &setup.dump_path]);
    expect_status(&output, 0, "verify");
    assert!(text(&output.stdout).contains("the dump is whole"));

    let output = lifeboat(&[&"inspect", &"--json", &setup.dump_path]);
    expect_status(&output, 0, "inspect --json");
    let facts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(facts["format"], "dump");
    assert_eq!(facts["kernel_release"], "6.1.0-test");
    assert_eq!(
        facts["build_id"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(facts["crash_time"], 1_700_000_000);
    assert_eq!(facts["crash_time_utc"], "2023-11-14T22:13:20Z");
    // No printk ring in this vmcore: the panic is unknown, and says why.
    assert!(facts["panic_message"].is_null());
    assert!(facts["log_error"].is_string());
    let frames = setup.vmcore.len().div_ceil(4096) as u64;
    assert_eq!(facts["frames"], frames);
    let zero_pages = setup
        .vmcore
        .chunks(4096)
        .filter(|page| page.iter().all(|&b| b == 0))
        .count() as u64;
    assert_eq!(facts["zero_frames"], zero_pages);
    assert_eq!(facts["data_frames"], frames - zero_pages);
    assert_eq!(facts["seek_table"], "consistent");
    assert_eq!(facts["decompressed_bytes"], setup.vmcore.len() as u64);
    assert_eq!(facts["vmcore_bytes"], setup.vmcore.len() as u64);
    assert_eq!(facts["complete"], true);
    assert!(facts["record_status"].is_null(), "no lifeboat.json yet");

    // The record of a capture beside the dump is read and reported.
    let record = dumper::record::Record {
        status: Some(dumper::record::Status::Incomplete),
        error: Some("the capture deadline of 9 s passed while dumping".into()),
        ..Default::default()
    };
    fs::write(setup.dir.join("lifeboat.json"), record.to_json()).unwrap();
    let output = lifeboat(&[&"inspect", &"--json", &setup.dump_path]);
    expect_status(&output, 0, "inspect --json with a record");
    let facts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(facts["record_status"], "incomplete");
    assert_eq!(
        facts["record_error"],
        "the capture deadline of 9 s passed while dumping"
    );
    let output = lifeboat(&[&"inspect", &setup.dump_path]);
    assert!(
        text(&output.stdout).contains("incomplete: the capture deadline of 9 s"),
        "{}",
        text(&output.stdout)
    );
    fs::remove_file(setup.dir.join("lifeboat.json")).unwrap();

    let out = setup.dir.join("out.vmcore");
    let output = lifeboat(&[&"decompress", &setup.dump_path, &"-o", &out]);
    expect_status(&output, 0, "decompress");
    let back = fs::read(&out).unwrap();
    assert!(back == setup.vmcore, "decompress gives the vmcore back");
    let meta = fs::metadata(&out).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // Zero pages are holes (on filesystems that have them; tmpfs and ext4
    // do): the file takes less space than its size.
    assert!(
        meta.blocks() * 512 < meta.len(),
        "{} blocks for {} bytes",
        meta.blocks(),
        meta.len()
    );
    // An existing output is not replaced without --force.
    let output = lifeboat(&[&"decompress", &setup.dump_path, &"-o", &out]);
    expect_status(&output, 1, "decompress over an existing file");
    let output = lifeboat(&[&"decompress", &"--force", &setup.dump_path, &"-o", &out]);
    expect_status(&output, 0, "decompress --force");

    // The plain vmcore inspects too.
    let output = lifeboat(&[&"inspect", &"--json", &setup.vmcore_path]);
    expect_status(&output, 0, "inspect a vmcore");
    let facts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(facts["format"], "vmcore");
    assert_eq!(facts["complete"], true);
}

#[test]
fn dump_cut_in_the_second_segment_recovers_a_valid_core() {
    let setup = saved();
    let dump = fs::read(&setup.dump_path).unwrap();
    // Cut inside the frame holding the middle of the second segment.
    let middle = SECOND_AT + SECOND_BYTES / 2;
    let cut_at = frame_offset_for(&dump, middle) + 7;
    let cut_path = cut(&setup, "cut.zst", cut_at);
    let intact = middle - middle % 4096;

    let output = lifeboat(&[&"verify", &cut_path]);
    expect_status(&output, 3, "verify a cut dump");
    let stdout = text(&output.stdout);
    let expected = setup.vmcore.len();
    assert!(
        stdout.contains(&format!("intact        {intact} of {expected} bytes")),
        "{stdout}"
    );
    assert!(stdout.contains("--recover"), "{stdout}");

    let output = lifeboat(&[&"inspect", &"--json", &cut_path]);
    expect_status(&output, 0, "inspect a cut dump");
    let facts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(facts["complete"], false);
    assert_eq!(facts["seek_table"], "missing");
    assert_eq!(facts["decompressed_bytes"], intact);
    assert!(facts["damage"].is_string());

    let out = setup.dir.join("recovered");
    let output = lifeboat(&[&"decompress", &cut_path, &"-o", &out]);
    expect_status(&output, 3, "decompress a cut dump without --recover");
    assert!(text(&output.stderr).contains("--recover"));
    assert!(!out.exists());

    let output = lifeboat(&[&"decompress", &"--recover", &cut_path, &"-o", &out]);
    expect_status(&output, 0, "decompress --recover");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("lost: segment 2"), "{stderr}");
    let recovered = fs::read(&out).unwrap();
    assert_eq!(recovered.len() as u64, intact);
    let headers = program_headers(&recovered);
    assert_eq!(headers.len(), 3);
    assert_eq!(headers[0].0, 4, "the PT_NOTE stays");
    assert_eq!(
        headers[1],
        (1, FIRST_AT, 0, FIRST_BYTES, FIRST_BYTES),
        "the first segment is whole"
    );
    let kept = intact - SECOND_AT;
    assert_eq!(
        headers[2],
        (1, SECOND_AT, SECOND_PADDR, kept, kept),
        "the second segment shrinks, memory size too"
    );
    // Everything but the program headers is the vmcore's prefix.
    let table_end = 64 + 3 * 56;
    assert_eq!(recovered[..64], setup.vmcore[..64]);
    assert_eq!(
        recovered[table_end..],
        setup.vmcore[table_end..intact as usize]
    );
    check_with_readelf(&out, 2);
}

#[test]
fn dump_cut_in_the_first_segment_drops_the_second() {
    let setup = saved();
    let dump = fs::read(&setup.dump_path).unwrap();
    let cut_at = frame_offset_for(&dump, FIRST_AT + 5 * 4096) + 3;
    let cut_path = cut(&setup, "early.zst", cut_at);
    let out = setup.dir.join("early.vmcore");
    let output = lifeboat(&[&"decompress", &"--recover", &cut_path, &"-o", &out]);
    expect_status(&output, 0, "decompress --recover");
    let recovered = fs::read(&out).unwrap();
    let headers = program_headers(&recovered);
    assert_eq!(headers.len(), 2, "{headers:x?}");
    assert_eq!(headers[1], (1, FIRST_AT, 0, 5 * 4096, 5 * 4096));
    // The slot the dropped header used is zeroed.
    assert!(recovered[64 + 2 * 56..64 + 3 * 56].iter().all(|&b| b == 0));
    check_with_readelf(&out, 1);

    // Cut inside the headers' frame: there is nothing to recover.
    let cut_path = cut(&setup, "headers.zst", 20);
    let out = setup.dir.join("nothing.vmcore");
    let output = lifeboat(&[&"decompress", &"--recover", &cut_path, &"-o", &out]);
    expect_status(&output, 3, "decompress --recover without headers");
    assert!(!out.exists());
    assert!(!setup.dir.join("nothing.vmcore.incomplete").exists());
    let output = lifeboat(&[&"verify", &cut_path]);
    expect_status(&output, 3, "verify without headers");
}

#[test]
fn dump_cut_inside_its_seek_table_still_holds_the_vmcore() {
    let setup = saved();
    let len = fs::metadata(&setup.dump_path).unwrap().len() as usize;
    let cut_path = cut(&setup, "no-table.zst", len - 10);
    let output = lifeboat(&[&"verify", &cut_path]);
    expect_status(&output, 3, "verify a dump without its table");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("not finished"), "{stdout}");
    assert!(stdout.contains("(100.0%)"), "{stdout}");

    let output = lifeboat(&[&"inspect", &"--json", &cut_path]);
    expect_status(&output, 0, "inspect a dump without its table");
    let facts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(facts["complete"], false);
    assert_eq!(facts["intact_percent"], 100.0);

    // Every byte of the vmcore is there: decompress needs no --recover.
    let out = setup.dir.join("no-table.vmcore");
    let output = lifeboat(&[&"decompress", &cut_path, &"-o", &out]);
    expect_status(&output, 0, "decompress a dump without its table");
    assert!(fs::read(&out).unwrap() == setup.vmcore);
}

#[test]
fn corrupt_frames_are_found() {
    let setup = saved();
    let mut dump = fs::read(&setup.dump_path).unwrap();
    // Damage a byte in the middle of the frame holding the first segment's
    // second page, a frame of data.
    let at = frame_offset_for(&dump, FIRST_AT + 4096) + 20;
    dump[at] ^= 0x55;
    let path = setup.dir.join("corrupt.zst");
    fs::write(&path, &dump).unwrap();
    let output = lifeboat(&[&"verify", &path]);
    expect_status(&output, 3, "verify a corrupt dump");
    assert!(
        text(&output.stdout).contains("bad frame"),
        "{}",
        text(&output.stdout)
    );
    let out = setup.dir.join("corrupt.vmcore");
    let output = lifeboat(&[&"decompress", &path, &"-o", &out]);
    expect_status(&output, 3, "decompress a corrupt dump");
    assert!(!out.exists());
    let output = lifeboat(&[&"decompress", &"--recover", &path, &"-o", &out]);
    expect_status(&output, 0, "decompress --recover a corrupt dump");
    let headers = program_headers(&fs::read(&out).unwrap());
    assert_eq!(headers[1].3, 4096, "{headers:x?}");
}

#[test]
fn usage_errors_and_other_files() {
    let output = lifeboat(&[&"decompress"]);
    expect_status(&output, 2, "missing arguments");
    let output = lifeboat(&[&"save", &"--level", &"99", &"/proc/version"]);
    expect_status(&output, 2, "a level out of range");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text");
    fs::write(&path, "not a dump").unwrap();
    let output = lifeboat(&[&"verify", &path]);
    expect_status(&output, 1, "verify a text file");
    assert!(text(&output.stderr).contains("neither an ELF vmcore nor a zstd dump"));
    // The log needs VMCOREINFO's printk symbols, which this vmcore lacks.
    let vmcore = dir.path().join("vmcore");
    fs::write(&vmcore, synthetic_vmcore()).unwrap();
    let output = lifeboat(&[&"dmesg", &vmcore]);
    expect_status(&output, 1, "dmesg without a log buffer");
    assert!(text(&output.stderr).contains("cannot read the kernel log"));
}

/// `lifeboat dmesg` of a vmcore and of its dump prints what makedumpfile
/// 1.7.6 prints, and with --no-caller what makedumpfile 1.7.2 prints.
/// Their outputs on synthetic cores are committed in the dumper crate
/// (`src/testdata/makedumpfile-<version>/`); the cores here are its printk
/// fuzz seeds, which hold the same rings without the page tables that
/// makedumpfile needs and the log does not.
#[test]
fn dmesg_prints_as_makedumpfile_does() {
    let dumper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dumper");
    let cases = [
        ("synthetic-lockless", "lockless"),
        ("synthetic-shuffled", "lockless-shuffled"),
        ("synthetic-eviction", "lockless-eviction"),
        ("synthetic-legacy", "legacy"),
        ("synthetic-legacy-caller", "legacy-caller"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (seed, reference) in cases {
        let vmcore = dumper.join("fuzz/corpus/printk").join(seed);
        let dump = dir.path().join(format!("{seed}.zst"));
        expect_status(&lifeboat(&[&"save", &vmcore, &dump]), 0, "save");
        for input in [&vmcore, &dump] {
            for (flags, version) in [(&[][..], "1.7.6"), (&["--no-caller"][..], "1.7.2")] {
                let path = dumper.join(format!(
                    "src/testdata/makedumpfile-{version}/{reference}.txt"
                ));
                let expected = fs::read(&path).unwrap();
                let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"dmesg"];
                args.extend(flags.iter().map(|flag| flag as &dyn AsRef<std::ffi::OsStr>));
                args.push(input);
                let output = lifeboat(&args);
                expect_status(&output, 0, "dmesg");
                assert_eq!(
                    text(&output.stdout),
                    text(&expected),
                    "lifeboat dmesg {flags:?} {} against {}",
                    input.display(),
                    path.display()
                );
            }
        }
    }
    // -o writes the same bytes, to a file only its owner reads.
    let vmcore = dumper.join("fuzz/corpus/printk/synthetic-lockless");
    let out = dir.path().join("dmesg");
    let output = lifeboat(&[&"dmesg", &"--no-caller", &vmcore, &"-o", &out]);
    expect_status(&output, 0, "dmesg -o");
    assert_eq!(
        fs::read(&out).unwrap(),
        fs::read(dumper.join("src/testdata/makedumpfile-1.7.2/lockless.txt")).unwrap()
    );
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// `readelf -l` accepts the core and lists `loads` PT_LOADs.
fn check_with_readelf(path: &Path, loads: usize) {
    if !tool_available("readelf") {
        eprintln!("readelf is not installed: not checking with it");
        return;
    }
    let output = Command::new("readelf")
        .arg("-lW")
        .arg(path)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "readelf: {stderr}");
    assert!(stderr.is_empty(), "readelf warns: {stderr}");
    assert_eq!(stdout.matches("  LOAD ").count(), loads, "{stdout}");
    assert_eq!(stdout.matches("  NOTE ").count(), 1, "{stdout}");
}

/// A vmcore whose VMCOREINFO says nothing of `struct page` cannot be
/// classified: `save -d` still saves it, whole, leaving out zero pages
/// only (they are zeros either way), and says why; inspect counts them.
#[test]
fn a_dump_level_without_a_memory_map_leaves_out_zero_pages_only() {
    let setup = saved();
    let dump = setup.dir.join("level31.zst");
    let output = lifeboat(&[
        &"save",
        &"-d",
        &"31",
        &"--frame-size",
        &"4096",
        &setup.vmcore_path,
        &dump,
    ]);
    expect_status(&output, 0, "save -d 31");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cannot classify the pages"), "{stderr}");
    assert!(stderr.contains("leaving out zero pages only"), "{stderr}");
    assert!(stderr.contains("dump level 31: left out"), "{stderr}");

    let output = lifeboat(&[&"inspect", &"--json", &dump]);
    expect_status(&output, 0, "inspect --json");
    let facts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(facts["exclusion_error"].is_null(), "{facts}");
    assert!(
        facts["excluded_pages"]["zero"].as_u64().unwrap() > 0,
        "{facts}"
    );
    for other in [
        "cache",
        "cache_private",
        "user",
        "free",
        "hwpoison",
        "offline",
    ] {
        assert_eq!(facts["excluded_pages"][other], 0, "{other}");
    }
    let output = lifeboat(&[&"inspect", &dump]);
    assert!(
        text(&output.stdout).contains("pages, as zeros (zero "),
        "{}",
        text(&output.stdout)
    );

    let output = lifeboat(&[&"verify", &dump]);
    expect_status(&output, 0, "verify");
    let out = setup.dir.join("level31.vmcore");
    let output = lifeboat(&[&"decompress", &dump, &"-o", &out]);
    expect_status(&output, 0, "decompress");
    assert!(fs::read(&out).unwrap() == setup.vmcore);
}
