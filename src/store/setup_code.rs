//! The first-run setup code: a one-time secret that a first run of the
//! admin UI from another machine must give before it may set the admin
//! password. Kept in `setup-code` in the data directory (0600), so that a
//! package's post-install script, the log, the tray and the owner reading
//! the file all show the same code; removed once the password is set.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use argon2::password_hash::rand_core::{OsRng, RngCore};

pub const SETUP_CODE_FILE: &str = "setup-code";

/// Letters and digits that cannot be mistaken for each other.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn path(dir: &Path) -> PathBuf {
    dir.join(SETUP_CODE_FILE)
}

/// The code in the data directory, made (and written, 0600) if there is
/// none: three groups of four, about 60 bits.
pub fn load_or_create(dir: &Path) -> io::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path(dir)) {
        let code = text.trim().to_string();
        if code.len() >= 8 {
            return Ok(code);
        }
    }
    let mut bytes = [0u8; 12];
    OsRng.fill_bytes(&mut bytes);
    let letters: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    let code = letters
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-");
    super::private::create_dir(dir)?;
    let mut file = super::private::create_file(&path(dir))?;
    writeln!(file, "{code}")?;
    file.sync_all()?;
    Ok(code)
}

/// The setup is done: the code is of no more use.
pub fn remove(dir: &Path) {
    let _ = std::fs::remove_file(path(dir));
}

/// Does `given` match the code? Case, spaces and dashes do not matter;
/// compared without an early exit.
pub fn matches(code: &str, given: &str) -> bool {
    let normal = |s: &str| -> Vec<u8> {
        s.bytes()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(|b| b.to_ascii_uppercase())
            .collect()
    };
    let (a, b) = (normal(code), normal(given));
    a.len() == b.len() && a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_kept_private_and_matched_loosely() {
        let dir = tempfile::tempdir().unwrap();
        let code = load_or_create(dir.path()).unwrap();
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(
            load_or_create(dir.path()).unwrap(),
            code,
            "the same code again"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches(&code, &code.to_lowercase().replace('-', " ")));
        assert!(!matches(&code, "AAAA-AAAA-AAAA"));
        assert!(!matches(&code, ""));
        remove(dir.path());
        assert_ne!(
            load_or_create(dir.path()).unwrap(),
            code,
            "a new one after the setup"
        );
    }
}
