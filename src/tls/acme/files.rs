//! What ACME keeps in `DataDirectory/tls/acme/`: the account (its key
//! inside, so readable by the owner only), and the certificate with its
//! key and what it was ordered for.

use std::path::{Path, PathBuf};

use instant_acme::AccountCredentials;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::tls::certs::{write_private, CertError};

/// The files, by name.
pub(super) struct Files {
    dir: PathBuf,
}

/// The account at one CA, as saved.
#[derive(Serialize, Deserialize)]
pub(super) struct SavedAccount {
    /// The ACME directory the account belongs to.
    pub directory: String,
    /// The contact address it was registered with.
    pub email: Option<String>,
    /// Its URL and private key.
    pub credentials: AccountCredentials,
}

/// What the saved certificate was ordered for: another directory or other
/// names make it due for replacement at once.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Ordered {
    pub directory: String,
    pub names: Vec<String>,
}

impl Files {
    pub fn in_dir(data_directory: &Path) -> Files {
        Files {
            dir: data_directory.join("tls").join("acme"),
        }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("certificate.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("certificate.key")
    }

    fn ordered_file(&self) -> PathBuf {
        self.dir.join("certificate.json")
    }

    fn account_file(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    /// The certificate and key files, if a certificate was obtained.
    pub fn saved(&self) -> Option<(PathBuf, PathBuf)> {
        let (cert, key) = (self.cert(), self.key());
        (cert.exists() && key.exists()).then_some((cert, key))
    }

    /// What the saved certificate was ordered for.
    pub fn ordered(&self) -> Option<Ordered> {
        let text = std::fs::read(self.ordered_file()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Keep a new certificate: the key first, then the chain, each written
    /// whole before it replaces the old file, so that no reader sees half
    /// of one.
    pub fn save_certificate(
        &self,
        chain_pem: &str,
        key_pem: &str,
        ordered: &Ordered,
    ) -> Result<(), CertError> {
        self.create_dir()?;
        replace(&self.key(), key_pem.as_bytes(), true)?;
        replace(&self.cert(), chain_pem.as_bytes(), false)?;
        let json = serde_json::to_vec_pretty(ordered).expect("plain strings");
        replace(&self.ordered_file(), &json, false)
    }

    /// The account saved for `directory`, if any. A file that cannot be
    /// read is reported and a new account is made.
    pub fn account(&self, directory: &str) -> Option<SavedAccount> {
        let path = self.account_file();
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<SavedAccount>(&bytes) {
            Ok(saved) if saved.directory == directory => Some(saved),
            Ok(_) => None,
            Err(e) => {
                warn!(
                    "{}: not a saved ACME account ({e}); making a new one",
                    path.display()
                );
                None
            }
        }
    }

    pub fn save_account(&self, account: &SavedAccount) -> Result<(), CertError> {
        self.create_dir()?;
        let json = serde_json::to_vec_pretty(account).map_err(|e| CertError {
            path: self.account_file(),
            message: format!("cannot write the account: {e}"),
        })?;
        replace(&self.account_file(), &json, true)
    }

    fn create_dir(&self) -> Result<(), CertError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| CertError {
            path: self.dir.clone(),
            message: format!("cannot create: {e}"),
        })
    }
}

/// Write `bytes` to a new file beside `path`, then rename it over `path`;
/// `private`: readable by the owner only.
fn replace(path: &Path, bytes: &[u8], private: bool) -> Result<(), CertError> {
    let temp = path.with_extension("new");
    // A fresh file, so that the owner-only mode applies.
    let _ = std::fs::remove_file(&temp);
    let written = if private {
        write_private(&temp, bytes)
    } else {
        std::fs::write(&temp, bytes).map_err(|e| CertError {
            path: temp.clone(),
            message: format!("cannot write: {e}"),
        })
    };
    written?;
    std::fs::rename(&temp, path).map_err(|e| CertError {
        path: path.to_path_buf(),
        message: format!("cannot replace: {e}"),
    })
}
