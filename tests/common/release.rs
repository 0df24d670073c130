//! A release feed on 127.0.0.1 and signed update archives, for the
//! self-update and rollback tests: the archives are signed with a key of
//! the tests' own, which debug builds of meteord trust when it is named in
//! METEORD_UPDATE_TEST_KEY.
#![cfg(unix)]

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use zipsign_api::SigningKey;

/// The version the feed offers: newer than any build of this crate.
pub const NEW_VERSION: &str = "99.0.0";
/// Appended to the binary to make "a newer build" (ELF ignores it).
pub const MARKER: &[u8] = b"\nmeteord test build 99.0.0\n";

pub fn test_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

pub fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[9u8; 32])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn asset_name() -> String {
    format!("meteord-{NEW_VERSION}-{}.tar.gz", self_update::get_target())
}

/// A `.tar.gz` holding `meteord` with these bytes.
pub fn archive(binary: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(binary.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, "meteord", binary).unwrap();
        tar.finish().unwrap();
    }
    gz.finish().unwrap()
}

/// Sign an archive as the release process does: bound to its file name.
pub fn sign(archive: &[u8], key: &SigningKey, name: &str) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    zipsign_api::sign::copy_and_sign_tar(
        &mut Cursor::new(archive),
        &mut out,
        std::slice::from_ref(key),
        Some(name.as_bytes()),
    )
    .unwrap();
    out.into_inner()
}

/// Path → contents of what the feed serves.
pub type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A release feed on 127.0.0.1: the manifest and one archive.
pub struct Feed {
    pub addr: SocketAddr,
    files: Files,
}

impl Feed {
    pub async fn start() -> Feed {
        let files: Files = Arc::default();
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::get(serve_file))
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Feed { addr, files }
    }

    pub fn url(&self) -> String {
        format!("http://{}/releases/manifest.json", self.addr)
    }

    /// Offer `archive` as release NEW_VERSION.
    pub fn offer(&self, archive: Vec<u8>) {
        self.offer_as(archive, &asset_name());
    }

    /// Offer `archive`, under the file name `name`, as release NEW_VERSION.
    pub fn offer_as(&self, archive: Vec<u8>, name: &str) {
        let manifest = serde_json::json!({
            "schema": 1,
            "releases": [
                {"version": "0.0.1", "assets": []},
                {"version": NEW_VERSION, "assets": [{"name": name, "url": name}]},
            ],
        });
        let mut files = self.files.lock().unwrap();
        files.insert(
            "releases/manifest.json".into(),
            manifest.to_string().into_bytes(),
        );
        files.insert(format!("releases/{name}"), archive);
    }
}

pub async fn serve_file(
    State(files): State<Files>,
    UrlPath(path): UrlPath<String>,
) -> axum::response::Response {
    match files.lock().unwrap().get(&path) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A copy of the built binary in a directory of its own.
pub struct Installed {
    pub dir: tempfile::TempDir,
    pub exe: PathBuf,
    pub original: Vec<u8>,
}

impl Installed {
    /// "A newer build": the same program with a marker appended.
    pub fn newer(&self) -> Vec<u8> {
        let mut newer = self.original.clone();
        newer.extend_from_slice(MARKER);
        newer
    }
}

pub fn install_copy() -> Installed {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("meteord");
    let original = std::fs::read(env!("CARGO_BIN_EXE_meteord")).unwrap();
    std::fs::write(&exe, &original).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    Installed { dir, exe, original }
}

pub fn builtin_config() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/assets/meteord.conf")
}
