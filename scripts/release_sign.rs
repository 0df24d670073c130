//! The release key's tool, used by `scripts/release.sh`
//! (`cargo run --example release-sign -- ...`):
//!
//! ```text
//! release-sign keygen PRIVATE PUBLIC    a new key pair (PRIVATE: 64 bytes, as zipsign writes
//!                                       it; PUBLIC: 32 bytes, like assets/update-key.pub)
//! release-sign public PRIVATE           print the public half, 64 hex digits
//! release-sign sign-tar ARCHIVE PRIVATE sign a .tar.gz in place, bound to its file name
//!                                       (what meteord's updater verifies)
//! release-sign verify-tar ARCHIVE KEY   check an archive's signature (KEY: public, or the pair)
//! release-sign sign-file FILE PRIVATE   write FILE.sig: the ed25519 signature, 128 hex digits
//! ```
//!
//! The private key stays outside the repository; this tool never prints it.

use std::io::{Cursor, Read};
use std::path::Path;
use std::process::ExitCode;

use ed25519_dalek::Signer as _;
use zipsign_api::{SigningKey, VerifyingKey};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["keygen", private, public] => keygen(Path::new(private), Path::new(public)),
        ["public", private] => read_key(Path::new(private)).map(|key| {
            println!("{}", hex(key.verifying_key().as_bytes()));
        }),
        ["sign-tar", archive, private] => sign_tar(Path::new(archive), Path::new(private)),
        ["verify-tar", archive, public] => verify_tar(Path::new(archive), Path::new(public)),
        ["sign-file", file, private] => sign_file(Path::new(file), Path::new(private)),
        _ => Err("usage: release-sign keygen|public|sign-tar|verify-tar|sign-file ... (see the source's header)".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("release-sign: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn keygen(private: &Path, public: &Path) -> Result<()> {
    if private.exists() {
        return Err(format!(
            "{} exists; not overwriting a key",
            private.display()
        ));
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .map_err(|e| format!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    write_private(private, &key.to_keypair_bytes())?;
    std::fs::write(public, key.verifying_key().as_bytes()).map_err(|e| e.to_string())?;
    println!("{}", hex(key.verifying_key().as_bytes()));
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_key(path: &Path) -> Result<SigningKey> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pair: [u8; 64] = bytes
        .try_into()
        .map_err(|_| format!("{}: not a 64-byte key pair", path.display()))?;
    SigningKey::from_keypair_bytes(&pair).map_err(|e| format!("{}: {e}", path.display()))
}

/// A public key file (32 bytes), or the public half of a key pair (64).
fn read_public(path: &Path) -> Result<VerifyingKey> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() == 64 {
        return read_key(path).map(|key| key.verifying_key());
    }
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("{}: not a 32-byte public key", path.display()))?;
    VerifyingKey::from_bytes(&key).map_err(|e| format!("{}: {e}", path.display()))
}

/// The archive's file name: what the signature is bound to.
fn context(archive: &Path) -> Result<String> {
    archive
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| format!("{}: no file name", archive.display()))
}

fn sign_tar(archive: &Path, private: &Path) -> Result<()> {
    let key = read_key(private)?;
    let name = context(archive)?;
    let unsigned = std::fs::read(archive).map_err(|e| e.to_string())?;
    let mut signed = Cursor::new(Vec::new());
    zipsign_api::sign::copy_and_sign_tar(
        &mut Cursor::new(unsigned),
        &mut signed,
        std::slice::from_ref(&key),
        Some(name.as_bytes()),
    )
    .map_err(|e| format!("{}: {e}", archive.display()))?;
    std::fs::write(archive, signed.into_inner()).map_err(|e| e.to_string())
}

fn verify_tar(archive: &Path, public: &Path) -> Result<()> {
    let key = read_public(public)?;
    let name = context(archive)?;
    let bytes = std::fs::read(archive).map_err(|e| e.to_string())?;
    zipsign_api::verify::verify_tar(&mut Cursor::new(bytes), &[key], Some(name.as_bytes()))
        .map_err(|e| format!("{}: {e}", archive.display()))?;
    println!("{}: signature verified", archive.display());
    Ok(())
}

fn sign_file(file: &Path, private: &Path) -> Result<()> {
    let key = read_key(private)?;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let signature = key.sign(&bytes);
    let encoded = hex(&signature.to_bytes());
    let mut out = file.as_os_str().to_owned();
    out.push(".sig");
    std::fs::write(&out, format!("{encoded}\n")).map_err(|e| e.to_string())
}
