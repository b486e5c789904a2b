//! Identities and known_hosts files as ssh-keygen writes them, and the
//! damaged, protected and misplaced ones lifeboat must refuse.

use super::*;
use std::path::Path;
use std::process::Command;

/// An SSH wire string.
fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A public key blob of `algorithm` whose key bytes are `fill`, in base64.
pub(crate) fn key(algorithm: &str, fill: u8) -> String {
    let mut blob = string(algorithm.as_bytes());
    blob.extend(string(&[fill; 32]));
    BASE64.encode(blob)
}

/// An openssh-key-v1 file with this cipher, key count and key type, cut
/// to `keep` bytes of its binary body.
pub(crate) fn openssh(cipher: &str, count: u32, key_type: &str, keep: usize) -> Vec<u8> {
    let mut body = OPENSSH_MAGIC.to_vec();
    body.extend(string(cipher.as_bytes()));
    body.extend(string(if cipher == "none" { b"none" } else { b"bcrypt" }));
    body.extend(string(b""));
    body.extend(count.to_be_bytes());
    let mut public = string(key_type.as_bytes());
    public.extend(string(&[7; 32]));
    body.extend(string(&public));
    // The private section, which lifeboat does not read.
    body.extend(string(&[0x5a; 64]));
    body.truncate(keep);
    let base64 = BASE64.encode(&body);
    let lines: Vec<&str> = base64
        .as_bytes()
        .chunks(70)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!("{OPENSSH_BEGIN}\n{}\n{OPENSSH_END}\n", lines.join("\n")).into_bytes()
}

#[test]
fn identities_are_read_by_their_headers() {
    let full = usize::MAX;
    let ok = |key_type: &'static str| Ok(key_type);
    let cases: Vec<(&str, Vec<u8>, Result<&str, IdentityError>)> = vec![
        (
            "ed25519",
            openssh("none", 1, "ssh-ed25519", full),
            ok("ssh-ed25519"),
        ),
        (
            "ecdsa",
            openssh("none", 1, "ecdsa-sha2-nistp384", full),
            ok("ecdsa-sha2-nistp384"),
        ),
        ("rsa", openssh("none", 1, "ssh-rsa", full), ok("ssh-rsa")),
        (
            "leading blank line",
            [b"\n".as_slice(), &openssh("none", 1, "ssh-ed25519", full)].concat(),
            ok("ssh-ed25519"),
        ),
        (
            "encrypted",
            openssh("aes256-ctr", 1, "ssh-ed25519", full),
            Err(IdentityError::Encrypted),
        ),
        (
            "two keys",
            openssh("none", 2, "ssh-ed25519", full),
            Err(IdentityError::KeyCount(2)),
        ),
        (
            "no key",
            openssh("none", 0, "ssh-ed25519", full),
            Err(IdentityError::KeyCount(0)),
        ),
        (
            "dsa",
            openssh("none", 1, "ssh-dss", full),
            Err(IdentityError::KeyType("`ssh-dss`".into())),
        ),
        (
            "security key",
            openssh("none", 1, "sk-ssh-ed25519@openssh.com", full),
            Err(IdentityError::KeyType(
                "`sk-ssh-ed25519@openssh.com`".into(),
            )),
        ),
        (
            "key type with a line break",
            openssh("none", 1, "ssh\ned25519", full),
            Err(IdentityError::KeyType("`ssh?ed25519`".into())),
        ),
        (
            "cut in the magic",
            openssh("none", 1, "ssh-ed25519", 10),
            Err(IdentityError::Damaged("it has no openssh-key-v1 header")),
        ),
        (
            "cut in the cipher",
            openssh("none", 1, "ssh-ed25519", 18),
            Err(IdentityError::Damaged("its header is cut short")),
        ),
        (
            "cut in the public key",
            openssh("none", 1, "ssh-ed25519", 60),
            Err(IdentityError::Damaged("its header is cut short")),
        ),
        (
            "no end",
            format!("{OPENSSH_BEGIN}\nAAAA\n").into_bytes(),
            Err(IdentityError::Damaged("it has no END line")),
        ),
        (
            "not base64",
            format!("{OPENSSH_BEGIN}\nno*base64\n{OPENSSH_END}\n").into_bytes(),
            Err(IdentityError::Damaged("its body is not base64")),
        ),
        (
            "pem rsa",
            b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n".to_vec(),
            ok("ssh-rsa"),
        ),
        (
            "pem ec",
            b"-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n".to_vec(),
            ok("ecdsa"),
        ),
        (
            "pem encrypted",
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
              DEK-Info: AES-128-CBC,00\n\nMIIE\n-----END RSA PRIVATE KEY-----\n"
                .to_vec(),
            Err(IdentityError::Encrypted),
        ),
        (
            "pem without end",
            b"-----BEGIN EC PRIVATE KEY-----\nMHcC\n".to_vec(),
            Err(IdentityError::Damaged("it has no END line")),
        ),
        (
            "pem dsa",
            b"-----BEGIN DSA PRIVATE KEY-----\nMIIB\n-----END DSA PRIVATE KEY-----\n".to_vec(),
            Err(IdentityError::KeyType("ssh-dss".into())),
        ),
        (
            "pkcs8 encrypted",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n"
                .to_vec(),
            Err(IdentityError::Encrypted),
        ),
        (
            "pkcs8",
            b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n".to_vec(),
            Err(IdentityError::NotAKey),
        ),
        (
            "public",
            format!("ssh-ed25519 {} me@host\n", key("ssh-ed25519", 1)).into_bytes(),
            Err(IdentityError::PublicKey),
        ),
        (
            "rfc4716 public",
            b"---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n".to_vec(),
            Err(IdentityError::PublicKey),
        ),
        ("empty", Vec::new(), Err(IdentityError::NotAKey)),
        ("blank", b"\n \n".to_vec(), Err(IdentityError::NotAKey)),
        ("binary", vec![0xff, 0xfe, 0], Err(IdentityError::NotAKey)),
        ("text", b"[network]\n".to_vec(), Err(IdentityError::NotAKey)),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(check_identity(&bytes), want, "{name}");
    }
}

/// Runs ssh-keygen (Debian package openssh-client) with `args`.
fn ssh_keygen(args: &[&str], file: &Path) {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-C", "test"])
        .args(args)
        .arg("-f")
        .arg(file)
        .output()
        .expect("ssh-keygen (Debian package openssh-client)");
    assert!(output.status.success(), "ssh-keygen {args:?}: {output:?}");
}

#[test]
fn identities_that_ssh_keygen_writes() {
    let dir = tempfile::tempdir().unwrap();
    // (ssh-keygen's arguments, what lifeboat makes of the private key)
    let cases: &[(&[&str], Result<&str, IdentityError>)] = &[
        (&["-t", "ed25519", "-N", ""], Ok("ssh-ed25519")),
        (
            &["-t", "ecdsa", "-b", "256", "-N", ""],
            Ok("ecdsa-sha2-nistp256"),
        ),
        (
            &["-t", "ecdsa", "-b", "521", "-N", ""],
            Ok("ecdsa-sha2-nistp521"),
        ),
        (&["-t", "rsa", "-b", "2048", "-N", ""], Ok("ssh-rsa")),
        (&["-t", "ecdsa", "-m", "PEM", "-N", ""], Ok("ecdsa")),
        (
            &["-t", "ed25519", "-N", "secret"],
            Err(IdentityError::Encrypted),
        ),
        (
            &["-t", "ecdsa", "-m", "PEM", "-N", "secret"],
            Err(IdentityError::Encrypted),
        ),
        (
            &["-t", "ecdsa", "-m", "PKCS8", "-N", "secret"],
            Err(IdentityError::Encrypted),
        ),
        (
            &["-t", "ecdsa", "-m", "PKCS8", "-N", ""],
            Err(IdentityError::NotAKey),
        ),
    ];
    for (index, (args, want)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("id{index}"));
        ssh_keygen(args, &file);
        let private = std::fs::read(&file).unwrap();
        let got = check_identity(&private);
        assert_eq!(&got, want, "{args:?}");
        // No message shows any of the key.
        if let Err(error) = got {
            let text = String::from_utf8(private).unwrap();
            let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
            for line in body.iter().filter(|line| line.len() >= 8) {
                assert!(!error.to_string().contains(&line[..8]), "{error}");
            }
        }
        let public = std::fs::read(file.with_extension("pub")).unwrap();
        assert_eq!(
            check_identity(&public),
            Err(IdentityError::PublicKey),
            "{args:?}"
        );
    }
}

#[test]
fn known_hosts_give_the_servers_keys() {
    let k0 = key("ssh-ed25519", 0);
    let k1 = key("ssh-ed25519", 1);
    let k2 = key("ssh-ed25519", 2);
    let ecdsa = key("ecdsa-sha2-nistp256", 3);
    let ed = |key: &str| format!("ssh-ed25519 {key}");
    let name = host_forms("NFS.example", "10.0.2.2".parse().unwrap(), 22);
    assert_eq!(name, ["nfs.example", "10.0.2.2"]);
    let address = host_forms("10.0.2.2", "10.0.2.2".parse().unwrap(), 22);
    assert_eq!(address, ["10.0.2.2"]);
    let port = host_forms("10.0.2.2", "10.0.2.2".parse().unwrap(), 2222);
    assert_eq!(port, ["[10.0.2.2]:2222"]);
    // Hashed by hand (Python's hmac) for the salt 00 01 … 13.
    let hashed_name = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|B5xuX/CVUXty5z4DdO2M0uvU10w=";
    let hashed_port = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|ebuGJRfCboqxNeEYQwR03WmVqy0=";
    // (known_hosts, the hosts looked for, result)
    type Case<'a> = (String, &'a [String], Result<Vec<String>, KnownHostsError>);
    let cases: Vec<Case> = vec![
        (
            format!("10.0.2.2 ssh-ed25519 {k0}\n"),
            &address,
            Ok(vec![ed(&k0)]),
        ),
        (
            format!(
                "# a comment\n\nother ssh-ed25519 {k1}\n10.0.2.2,nfs ssh-ed25519 {k0} root@nfs\n"
            ),
            &address,
            Ok(vec![ed(&k0)]),
        ),
        // The name or the address, each key once, in file order.
        (
            format!(
                "nfs.example ssh-ed25519 {k1}\n10.0.2.2 ecdsa-sha2-nistp256 {ecdsa}\n\
                 10.0.2.2 ssh-ed25519 {k1}\n"
            ),
            &name,
            Ok(vec![ed(&k1), format!("ecdsa-sha2-nistp256 {ecdsa}")]),
        ),
        // Patterns, without case.
        (
            format!("*.EXAMPLE ssh-ed25519 {k0}\n"),
            &name,
            Ok(vec![ed(&k0)]),
        ),
        (
            format!("10.0.2.? ssh-ed25519 {k0}\n"),
            &address,
            Ok(vec![ed(&k0)]),
        ),
        (
            format!("10.0.*,!10.0.2.2 ssh-ed25519 {k0}\n10.0.2.2 ssh-ed25519 {k1}\n"),
            &address,
            Ok(vec![ed(&k1)]),
        ),
        // Another port is written in brackets, and only that matches.
        (
            format!("10.0.2.2 ssh-ed25519 {k0}\n[10.0.2.2]:2222 ssh-ed25519 {k1}\n"),
            &port,
            Ok(vec![ed(&k1)]),
        ),
        (
            format!("[10.0.2.2]:2222 ssh-ed25519 {k1}\n"),
            &address,
            Err(KnownHostsError::NoKey {
                looked_for: "`10.0.2.2`".into(),
                example: "10.0.2.2".into(),
            }),
        ),
        // Hashed entries.
        (
            format!("{hashed_name} ssh-ed25519 {k2}\n"),
            &name,
            Ok(vec![ed(&k2)]),
        ),
        (
            format!("{hashed_port} ssh-ed25519 {k2}\n"),
            &port,
            Ok(vec![ed(&k2)]),
        ),
        (
            format!("{hashed_name} ssh-ed25519 {k2}\n|1|bad|salt ssh-ed25519 {k1}\n"),
            &address,
            Err(KnownHostsError::NoKey {
                looked_for: "`10.0.2.2`".into(),
                example: "10.0.2.2".into(),
            }),
        ),
        // Certificate authorities are not host keys.
        (
            format!("@cert-authority 10.0.2.2 ssh-ed25519 {k0}\n10.0.2.2 ssh-ed25519 {k1}\n"),
            &address,
            Ok(vec![ed(&k1)]),
        ),
        // A revoked key for the server, or for everyone, is refused; one
        // that is not the server's does not matter.
        (
            format!("10.0.2.2 ssh-ed25519 {k0}\n@revoked * ssh-ed25519 {k0}\n"),
            &address,
            Err(KnownHostsError::Revoked {
                line: 2,
                key_line: 1,
            }),
        ),
        (
            format!("10.0.2.2 ssh-ed25519 {k0}\n@revoked * ssh-ed25519 {k1}\n"),
            &address,
            Ok(vec![ed(&k0)]),
        ),
        (
            format!("10.0.2.2 ssh-ed25519 {k0}\n@revoked other ssh-ed25519 {k0}\n"),
            &address,
            Ok(vec![ed(&k0)]),
        ),
        // Damaged lines count only when they name the server.
        (
            format!("other ssh-ed25519 nonsense\n10.0.2.2 ssh-ed25519 {k0}\n"),
            &address,
            Ok(vec![ed(&k0)]),
        ),
        (
            "10.0.2.2 ssh-ed25519\n".to_owned(),
            &address,
            Err(KnownHostsError::BadKey {
                line: 1,
                reason: "it has no key after the host",
            }),
        ),
        (
            "10.0.2.2 ssh-ed25519 !!!!\n".to_owned(),
            &address,
            Err(KnownHostsError::BadKey {
                line: 1,
                reason: "the key is not base64",
            }),
        ),
        (
            format!("\n10.0.2.2 ssh-rsa {k0}\n"),
            &address,
            Err(KnownHostsError::BadKey {
                line: 2,
                reason: "the key is not of the type the line names",
            }),
        ),
        (
            format!("10.0.2.2 ssh+ed25519 {}\n", key("ssh+ed25519", 0)),
            &address,
            Err(KnownHostsError::BadKey {
                line: 1,
                reason: "its key type is not one ssh writes",
            }),
        ),
        (
            String::new(),
            &name,
            Err(KnownHostsError::NoKey {
                looked_for: "`nfs.example` or `10.0.2.2`".into(),
                example: "nfs.example".into(),
            }),
        ),
    ];
    for (text, hosts, want) in cases {
        assert_eq!(host_keys(&text, hosts), want, "{text}");
    }
}

#[test]
fn the_no_key_message_says_what_to_add() {
    let error = host_keys("", &["[10.0.2.2]:2222".to_owned()]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "it has no key for `[10.0.2.2]:2222`: add the server's host key as a line \
         `[10.0.2.2]:2222 <key type> <base64>` (from the server's \
         /etc/ssh/ssh_host_*_key.pub); lifeboat never trusts a key on first use"
    );
}

#[test]
fn known_hosts_that_ssh_keygen_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    let k0 = key("ssh-ed25519", 0);
    let k1 = key("ssh-ed25519", 1);
    std::fs::write(
        &file,
        format!("nfs.example ssh-ed25519 {k0}\n[10.0.2.2]:2222 ssh-ed25519 {k1}\n"),
    )
    .unwrap();
    let output = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("ssh-keygen (Debian package openssh-client)");
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("nfs.example"), "{text}");
    let address = "10.0.2.2".parse().unwrap();
    assert_eq!(
        host_keys(&text, &host_forms("nfs.example", address, 22)),
        Ok(vec![format!("ssh-ed25519 {k0}")])
    );
    assert_eq!(
        host_keys(&text, &host_forms("10.0.2.2", address, 2222)),
        Ok(vec![format!("ssh-ed25519 {k1}")])
    );
}

#[test]
fn globs_match_as_ssh_does() {
    let cases = [
        ("*", "", true),
        ("*", "anything", true),
        ("a*c", "abbbc", true),
        ("a*c", "abbb", false),
        ("*.example", "nfs.example", true),
        ("*.example", "example", false),
        ("?", "a", true),
        ("?", "", false),
        ("a?c*", "abcdef", true),
        ("**a", "bba", true),
        ("exact", "exact", true),
        ("exact", "exactly", false),
        ("", "", true),
        ("", "a", false),
    ];
    for (pattern, text, want) in cases {
        assert_eq!(
            glob(pattern.as_bytes(), text.as_bytes()),
            want,
            "{pattern} {text}"
        );
    }
    // Many stars against a long text stay fast.
    let pattern = "*a".repeat(30) + "b";
    assert!(!glob(pattern.as_bytes(), "a".repeat(300).as_bytes()));
}
