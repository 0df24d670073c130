//! Files only this server's user may read: the data directory holds the
//! password hash, token hashes and persisted messages of private channels.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Create `dir` (and its parents) if needed; the directory itself is made
/// readable by its owner only (0700 on Unix).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if !dir.is_dir() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    restrict(dir, 0o700)
}

/// Create (or truncate) a file readable by its owner only (0600 on Unix).
pub fn create_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.create(true).open(path)?;
    restrict(path, 0o600)?;
    Ok(file)
}

/// Make an existing file (or directory) readable by its owner only; one
/// made by an older version may be open to everyone.
pub fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current & !mode != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}
