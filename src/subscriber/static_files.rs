//! Static files on the subscriber port, with meteord's rules and bytes.
//!
//! Paths may use only `[A-Za-z0-9-_./]` and never `..`; a directory serves
//! its DirectoryIndex. Files come from SubscriberDocumentRoot when that
//! directory exists, else from the files built into the binary. Responses
//! are written raw because old clients saw (and tests pin) the exact header
//! bytes, `Content-length` spelling included. Found files are cached until
//! SIGHUP or SIGUSR2.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::push::SERVER_NAME;
use crate::config::Config;

/// Files larger than this are served but not cached.
const CACHE_FILE_LIMIT: usize = 1 << 20;
/// Most files kept in the cache.
const CACHE_ENTRIES: usize = 256;

#[derive(Debug)]
pub struct Document {
    pub body: Bytes,
    pub content_type: &'static str,
}

/// The document cache, for one generation of the node's documents (a new
/// generation — reload, SIGUSR2 — empties it).
#[derive(Default)]
pub struct Documents {
    cache: Mutex<(u64, HashMap<String, Arc<Document>>)>,
}

impl Documents {
    /// The document a request path names, if it may be served and exists.
    pub fn lookup(
        &self,
        generation: u64,
        config: &Config,
        request_path: &str,
    ) -> Option<Arc<Document>> {
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.0 != generation {
                *cache = (generation, HashMap::new());
            }
            if let Some(doc) = cache.1.get(request_path) {
                return Some(doc.clone());
            }
        }
        let relative = legal_relative_path(request_path)?;
        let doc = Arc::new(match document_root(config) {
            Some(root) => read_from_root(&root, relative, &config.directory_index)?,
            None => read_builtin(relative, &config.directory_index)?,
        });
        if doc.body.len() <= CACHE_FILE_LIMIT {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.0 == generation && cache.1.len() < CACHE_ENTRIES {
                cache.1.insert(request_path.to_string(), doc.clone());
            }
        }
        Some(doc)
    }
}

/// The configured document root, if it is usable.
pub fn document_root(config: &Config) -> Option<PathBuf> {
    let root = config.document_root.trim();
    if root.is_empty() || root == "/" {
        return None;
    }
    let root = Path::new(root);
    root.is_dir().then(|| root.to_path_buf())
}

/// Strip surrounding slashes and check meteord's character rules. No path
/// segment may start with a dot: that refuses `..` and hidden files such
/// as `.git/config` or `.htpasswd` alike.
pub fn legal_relative_path(request_path: &str) -> Option<&str> {
    let path = request_path.trim_matches('/');
    let legal = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    let hidden = path.split('/').any(|segment| segment.starts_with('.'));
    (legal && !hidden && !path.contains("..")).then_some(path)
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".js") || path.ends_with(".mjs") {
        "text/javascript"
    } else {
        "text/html"
    }
}

fn read_from_root(root: &Path, relative: &str, index: &str) -> Option<Document> {
    let mut path = root.join(relative);
    if path.is_dir() {
        path.push(index);
    }
    // Symbolic links may not lead outside the root.
    let real = path.canonicalize().ok()?;
    if !real.starts_with(root.canonicalize().ok()?) || !real.is_file() {
        return None;
    }
    let body = std::fs::read(&real).ok()?;
    Some(Document {
        body: Bytes::from(body),
        content_type: content_type(&path.to_string_lossy()),
    })
}

fn read_builtin(relative: &str, index: &str) -> Option<Document> {
    let path = if crate::assets::is_dir(relative) {
        if relative.is_empty() {
            index.to_string()
        } else {
            format!("{relative}/{index}")
        }
    } else {
        relative.to_string()
    };
    let body = crate::assets::get(&path)?;
    Some(Document {
        body: Bytes::from(body.into_owned()),
        content_type: content_type(&path),
    })
}

/// The response head meteord sent for documents (and, with length 0, 404s).
pub fn response_head(status: &str, content_type: &str, length: usize, html: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nServer: {SERVER_NAME}\r\nContent-Type: {content_type}; charset=utf-8\r\nPragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\r\n"
    );
    // Legacy frame pages set document.domain, which browsers honour only for
    // documents outside origin-keyed agent clusters.
    if html && status.starts_with("200") {
        head.push_str("Origin-Agent-Cluster: ?0\r\n");
    }
    // Scripts may be imported as modules from pages on other sites, which
    // browsers allow only with CORS.
    if content_type == "text/javascript" && status.starts_with("200") {
        head.push_str("Access-Control-Allow-Origin: *\r\n");
    }
    head.push_str(&format!("Content-length: {length}\r\n\r\n"));
    head.into_bytes()
}

/// Add a Strict-Transport-Security header to a head from [`response_head`].
pub fn add_hsts(head: &mut Vec<u8>, max_age: u64) {
    let at = head.len() - 2;
    let header = format!("Strict-Transport-Security: max-age={max_age}\r\n");
    head.splice(at..at, header.into_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        assert_eq!(legal_relative_path("/meteor.js"), Some("meteor.js"));
        assert_eq!(legal_relative_path("//a/b/"), Some("a/b"));
        assert_eq!(legal_relative_path("/"), Some(""));
        assert_eq!(legal_relative_path("/../etc/passwd"), None);
        assert_eq!(legal_relative_path("/a..b"), None);
        assert_eq!(legal_relative_path("/%2e%2e/x"), None);
        assert_eq!(legal_relative_path("/a\\b"), None);
        assert_eq!(legal_relative_path("/a b"), None);
    }
}
