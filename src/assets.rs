//! Files built into the binary: the browser client and its helper pages,
//! served when no document root is configured.

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
#[exclude = "meteord.conf"]
#[exclude = "icons/*"]
pub struct Assets;

/// The contents of a built-in file.
pub fn get(path: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
    Assets::get(path).map(|f| f.data)
}

/// Is `path` a directory of the built-in files?
pub fn is_dir(path: &str) -> bool {
    let prefix = format!("{}/", path.trim_end_matches('/'));
    path.is_empty() || Assets::iter().any(|f| f.starts_with(&prefix))
}
