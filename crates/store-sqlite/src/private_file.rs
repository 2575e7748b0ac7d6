//! Files that hold the signing keys and password hashes (the database,
//! its `-wal` and `-shm`, backups) are created readable by their owner
//! only, whatever the umask (red team round 2, finding 9: under umask 022
//! all of them were `-rw-r--r--`). SQLite creates a database's `-wal` and
//! `-shm` with the database file's own mode, so creating the database
//! file first with mode 600 covers all three.

use std::io;
use std::path::{Path, PathBuf};

use infusion_store::{StoreError, StoreResult};

/// Creates `path` empty with mode 600 unless it exists already (what it
/// then holds and its mode are left alone).
pub fn create_private(path: &Path) -> StoreResult<()> {
    created_private(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", path.display())))
}

fn created_private(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The database `path`'s files (itself, `-wal`, `-shm`) that exist and
/// that users other than the owner may read or write, with their modes.
pub fn exposed(path: &Path) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        if let Ok(meta) = std::fs::metadata(&file) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                found.push((file, mode));
            }
        }
    }
    found
}

/// Logs a warning for each of [`exposed`]'s files: whoever reads them can
/// sign a dose (unless the keys are in a key file) and try the password
/// hashes offline.
pub fn warn_if_exposed(path: &Path) {
    for (file, mode) in exposed(path) {
        tracing::warn!(
            file = %file.display(),
            mode = format!("{mode:o}"),
            "the database file is open to other users: `chmod 600` it; it holds the password \
             hashes and, unless they are in a key file, the keys that sign every dose"
        );
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_file_is_the_owners_alone_and_an_open_one_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("infusion.db");
        create_private(&db).unwrap();
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(exposed(&db).is_empty());
        let wal = dir.path().join("infusion.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(exposed(&db), [(wal, 0o644)]);
        // An existing file is left as it is.
        std::fs::write(&db, b"kept").unwrap();
        create_private(&db).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"kept");
    }
}
