//! `lifeboat image` and `check-config` with network targets, run as a user
//! runs them: an ssh key that ssh-keygen wrote goes into the image 0600 and
//! nowhere else, and what the building machine cannot know is said.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const LIFEBOAT: &str = env!("CARGO_BIN_EXE_lifeboat");

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

/// A key pair written by ssh-keygen (Debian package openssh-client), with
/// `passphrase`; returns the private key's path.
fn keygen(dir: &Path, name: &str, passphrase: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", "test", "-N", passphrase, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen (Debian package openssh-client)");
    assert!(status.success());
    path
}

#[test]
fn network_targets_make_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let identity = keygen(dir.path(), "id_ed25519", "");
    let host_key = fs::read_to_string(identity.with_extension("pub")).unwrap();
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    let known_hosts = dir.path().join("known_hosts");
    fs::write(&known_hosts, format!("10.0.2.2 {}\n", host_key.join(" "))).unwrap();
    let init = dir.path().join("init");
    fs::write(&init, b"\x7fELF pretend").unwrap();
    // A kernel with its NFS client built in.
    let modules = dir.path().join("modules");
    fs::create_dir(&modules).unwrap();
    fs::write(
        modules.join("modules.builtin"),
        "kernel/net/sunrpc/sunrpc.ko\nkernel/fs/nfs/nfs.ko\nkernel/fs/nfs/nfsv4.ko\n",
    )
    .unwrap();
    let config = dir.path().join("lifeboat.toml");
    let write_config = |identity: &Path| {
        fs::write(
            &config,
            format!(
                "[network]\n\
                 interface = \"mac:00:00:5e:00:53:01\"\n\
                 name = \"web-17\"\n\
                 \n\
                 [[target]]\n\
                 type = \"nfs\"\n\
                 server = \"10.0.2.2\"\n\
                 export = \"/export\"\n\
                 \n\
                 [[target]]\n\
                 type = \"ssh\"\n\
                 server = \"10.0.2.2\"\n\
                 identity = \"{}\"\n\
                 known_hosts = \"{}\"\n",
                identity.display(),
                known_hosts.display()
            ),
        )
        .unwrap()
    };
    write_config(&identity);
    let image = dir.path().join("lifeboat.img");
    let output = lifeboat(&[
        &"image",
        &"--config",
        &config,
        &"--kernel-modules",
        &modules,
        &"--init",
        &init,
        &"--no-compress",
        &"-o",
        &image,
    ]);
    let printed = text(&output.stdout) + &text(&output.stderr);
    assert!(output.status.success(), "{printed}");
    // The documentation MAC address is on no machine.
    assert!(
        printed.contains(
            "lifeboat: warning: the network targets' interface: no interface of this machine \
             has MAC address 00:00:5e:00:53:01. The image cannot know its driver: add its \
             driver to `modules`"
        ),
        "{printed}"
    );

    // The key is in the image, readable by root alone, and nowhere else.
    let private = fs::read_to_string(&identity).unwrap();
    let secret: Vec<&str> = private
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let listing = Command::new("cpio")
        .args(["-itv", "--quiet", "-F"])
        .arg(&image)
        .output()
        .expect("cpio (Debian package cpio)");
    let listing = text(&listing.stdout);
    let line = listing
        .lines()
        .find(|line| line.ends_with("etc/lifeboat/ssh/identity1"))
        .unwrap_or_else(|| panic!("no identity in\n{listing}"));
    assert!(line.starts_with("-rw------- "), "{line}");
    let extracted = dir.path().join("extracted");
    fs::create_dir(&extracted).unwrap();
    let status = Command::new("cpio")
        .args(["-id", "--quiet", "-F"])
        .arg(&image)
        .current_dir(&extracted)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        fs::read_to_string(extracted.join("etc/lifeboat/ssh/identity1")).unwrap(),
        private
    );
    let baked = fs::read_to_string(extracted.join("etc/lifeboat/config")).unwrap();
    assert!(
        baked.contains("target.identity=/etc/lifeboat/ssh/identity1\n"),
        "{baked}"
    );
    assert!(
        baked.contains(&format!("target.host_key={}\n", host_key.join(" "))),
        "{baked}"
    );
    assert!(baked.contains("network.name=web-17\n"), "{baked}");
    let check = lifeboat(&[&"check-config", &config]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let checked = text(&check.stdout) + &text(&check.stderr);
    assert!(
        checked.contains(&format!("target.identity={}\n", identity.display())),
        "{checked}"
    );
    for line in &secret {
        assert!(!printed.contains(line), "the key was printed:\n{printed}");
        assert!(!checked.contains(line), "the key was printed:\n{checked}");
        assert!(!baked.contains(line), "the key is in the config:\n{baked}");
    }

    // A key with a passphrase is refused where the config names it.
    let protected = keygen(dir.path(), "id_protected", "secret");
    write_config(&protected);
    let output = lifeboat(&[&"check-config", &config]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "lifeboat.toml:13:12: key `target[1].identity`: `{}`: it is passphrase-protected",
            protected.display()
        )),
        "{stderr}"
    );
}
