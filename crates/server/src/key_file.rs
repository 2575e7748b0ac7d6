//! The server's keys in a file of their own, outside the database.
//!
//! Whoever holds the index signing key can sign any dose for every pump,
//! and whoever holds the challenge key can mint login challenges. Kept in
//! the database (the default, so that a first start needs nothing), they
//! travel with every backup and are readable by every database
//! administrator. A key file separates the two custodies: the database
//! then holds only the public half of the index key, and only servers
//! given the file (`infusion serve --key-file`) can sign.
//!
//! The file is text, one `name = hex` line per key, under the same names
//! the database uses; like an SSH private key it must be readable by its
//! owner only, or it is refused.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use infusion_protocol::HexBytes;

/// Name of the index signing key (an Ed25519 seed).
pub const INDEX_KEY: &str = "index-signing-ed25519";
/// Name of the login challenge key (an HMAC-SHA256 key).
pub const CHALLENGE_KEY: &str = "login-challenge-hmac";

/// What the file says of itself, above the keys.
const HEADER: &str = "# infusion server keys. Whoever holds this file can sign an infusion index\n\
# for every pump of this deployment: keep it readable by the server only.\n";

/// The server's two secret keys, as kept in a key file.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// Seed of the Ed25519 key that signs every index.
    pub index: [u8; 32],
    /// HMAC key that tags login challenges.
    pub challenge: [u8; 32],
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyFile { .. }")
    }
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("key file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// Others than its owner may read or write it.
    #[error(
        "key file {path} is open to other users (mode {mode:o}): `chmod 600` it, since whoever reads it can sign any dose"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line that is not `name = 64 hex digits` under a known name, or a
    /// name given twice.
    #[error("key file {path}, line {line}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A key is not in the file.
    #[error("key file {path} has no {name} line")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The key's name.
        name: &'static str,
    },
}

impl KeyFile {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<KeyFile, KeyFileError> {
        let io = |error| KeyFileError::Io {
            path: path.to_owned(),
            error,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        check_private(path, &file)?;
        let text = std::io::read_to_string(file).map_err(io)?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<KeyFile, KeyFileError> {
        let mut index = None;
        let mut challenge = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let format = |reason: String| KeyFileError::Format {
                path: path.to_owned(),
                line: n + 1,
                reason,
            };
            let Some((name, value)) = line.split_once('=') else {
                return Err(format("expected `name = hex`".into()));
            };
            let slot = match name.trim() {
                INDEX_KEY => &mut index,
                CHALLENGE_KEY => &mut challenge,
                other => return Err(format(format!("unknown key {other:?}"))),
            };
            if slot.is_some() {
                return Err(format(format!("{} given twice", name.trim())));
            }
            let bytes = HexBytes::<32>::parse(value.trim())
                .map_err(|_| format("expected 64 hex digits (32 bytes)".into()))?;
            *slot = Some(bytes.0);
        }
        let missing = |name| KeyFileError::Missing {
            path: path.to_owned(),
            name,
        };
        Ok(KeyFile {
            index: index.ok_or_else(|| missing(INDEX_KEY))?,
            challenge: challenge.ok_or_else(|| missing(CHALLENGE_KEY))?,
        })
    }

    /// The file's text.
    fn render(&self) -> String {
        format!(
            "{HEADER}{INDEX_KEY} = {}\n{CHALLENGE_KEY} = {}\n",
            HexBytes(self.index),
            HexBytes(self.challenge)
        )
    }

    /// Writes a new file at `path`, readable by its owner only, and makes
    /// it durable before returning. An existing file is never overwritten:
    /// it may hold the keys every pump trusts.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyFileError> {
        let io = |error| KeyFileError::Io {
            path: path.to_owned(),
            error,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        if let Err(error) = file
            .write_all(self.render().as_bytes())
            .and_then(|()| file.sync_all())
        {
            // A half-written key file must not pass for the keys.
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(io(error));
        }
        // The directory entry too, so that a crash cannot lose the file
        // after the database has let go of the keys.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

/// Refuses a file that others than its owner may read or write.
#[cfg(unix)]
fn check_private(path: &Path, file: &std::fs::File) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|error| KeyFileError::Io {
            path: path.to_owned(),
            error,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &std::fs::File) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeyFile {
        KeyFile {
            index: [0xa5; 32],
            challenge: [0x3c; 32],
        }
    }

    #[test]
    fn a_written_file_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.keys");
        keys().write_new(&path).unwrap();
        assert_eq!(KeyFile::read(&path).unwrap(), keys());
        let other = KeyFile {
            index: [1; 32],
            ..keys()
        };
        assert!(matches!(
            other.write_new(&path),
            Err(KeyFileError::Io { .. })
        ));
        assert_eq!(KeyFile::read(&path).unwrap(), keys(), "unchanged");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.keys");
        keys().write_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = KeyFile::read(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Exposed { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        let path = Path::new("k");
        let good = keys().render();
        let index_line = format!("{INDEX_KEY} = {}", HexBytes(keys().index));
        let cases: &[(String, &str)] = &[
            (good.replace(" = ", " "), "line 3"),
            (good.replace(INDEX_KEY, "signing-key"), "unknown key"),
            (format!("{good}{index_line}\n"), "given twice"),
            (
                good.replace(&index_line, &index_line[..index_line.len() - 2]),
                "64 hex digits",
            ),
            (
                good.replace(&index_line, ""),
                "no index-signing-ed25519 line",
            ),
            (String::new(), "no index-signing-ed25519 line"),
        ];
        for (text, expected) in cases {
            let err = KeyFile::parse(path, text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should say {expected:?}");
        }
        assert_eq!(KeyFile::parse(path, &good).unwrap(), keys());
    }

    #[test]
    fn debug_output_shows_no_key() {
        assert_eq!(format!("{:?}", keys()), "KeyFile { .. }");
    }
}
