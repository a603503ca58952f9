//! Where results go. A seed file is checked before the work that cannot be undone (seeding a
//! key, marking seeds exported), so a path that cannot be written fails at once rather than
//! after a key holds a seed whose row has nowhere to go. Standard output is made private
//! before a seed is written to it (`oathkey export > seeds.csv`).

use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use oathkey_seedfile::WriteMode;

use crate::exit::{BAD_FILE, Failure};

/// The directory a file is written in (a bare name is in the current directory).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Whether files can be created in `dir`: by creating one, with the prefix the seed-file
/// writer's temporary files have, and removing it. Asking the file system is the only check
/// that knows about read-only mounts, ACLs and quotas.
fn can_create_in(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("the directory {} does not exist", dir.display()));
        }
        Err(e) => return Err(format!("cannot use the directory {}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => return Err(format!("{} is not a directory", dir.display())),
        Ok(_) => {}
    }
    tempfile::Builder::new()
        .prefix(".oathkey-seedfile.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| format!("cannot create files in {}: {e}", dir.display()))
}

/// Why a seed file could not be written at `path` with `mode`, found without writing it: its
/// directory is missing, is no directory or takes no new files; the path is a directory or
/// another non-file; it exists and `mode` does not allow that; it cannot be read to append.
pub fn seed_file_problem(path: &Path, mode: WriteMode) -> Option<String> {
    if let Err(reason) = can_create_in(directory_of(path)) {
        return Some(format!("cannot write {}: {reason}", path.display()));
    }
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        return Some(format!(
            "cannot write {}: it is a directory",
            path.display()
        ));
    }
    if !meta.is_file() {
        return Some(format!(
            "cannot write {}: it is not a regular file",
            path.display()
        ));
    }
    match mode {
        WriteMode::CreateNew => Some(
            oathkey_seedfile::FileError::Exists {
                path: path.to_owned(),
            }
            .to_string(),
        ),
        WriteMode::Append => std::fs::File::open(path)
            .err()
            .map(|e| format!("cannot read {} to append to it: {e}", path.display())),
        WriteMode::Replace => None,
    }
}

/// Checks where QR codes go before anything is written: `dir` is a directory that takes new
/// files (or can be created: its nearest existing ancestor does), no PNG exists already (one
/// is never overwritten), and no two serials share a PNG name.
pub fn qr_dir_problem<'a>(
    dir: &Path,
    pngs: impl IntoIterator<Item = (&'a str, std::path::PathBuf)>,
) -> Option<String> {
    // The directory is created when missing: then its nearest existing ancestor must take it.
    let mut existing = dir;
    while !existing.exists() && directory_of(existing) != existing {
        existing = directory_of(existing);
    }
    if let Err(reason) = can_create_in(existing) {
        return Some(format!(
            "cannot write QR codes to {}: {reason}",
            dir.display()
        ));
    }
    let mut names = std::collections::BTreeMap::new();
    for (serial, path) in pngs {
        if path.symlink_metadata().is_ok() {
            return Some(format!(
                "{} already exists (QR codes are never overwritten; move it or pick another --qr-dir)",
                path.display()
            ));
        }
        if let Some(other) = names.insert(path.clone(), serial) {
            return Some(format!(
                "serials {other} and {serial} would both be written as {}",
                path.display()
            ));
        }
    }
    None
}

/// Makes standard output private when it is a regular file (`oathkey export > seeds.csv`,
/// `oathkey token new > alice.txt`), before a seed is written to it: the shell created the
/// file with the umask's mode, typically 0644. It is set to 0600 through the open descriptor
/// (fchmod), which changes the very file written to, whatever its name. Refused, with advice
/// to use a file oathkey creates, when that would not make it private: the file belongs to
/// someone else (who can read it whatever its mode) or has other names (hard links, which
/// keep the seeds after this name is deleted), or its mode cannot be changed.
///
/// Returns whether standard output is a regular file: only then is what is written there
/// known to be kept (a pipe or a terminal may drop it).
pub fn private_stdout(advice: &str) -> Result<bool, Failure> {
    let refuse = |reason: String| Failure {
        code: BAD_FILE,
        message: format!("standard output is a file {reason}; nothing was written: {advice}"),
    };
    let Ok(file) = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
    else {
        return Ok(false);
    };
    let Ok(meta) = file.metadata() else {
        return Ok(false);
    };
    if !meta.file_type().is_file() {
        return Ok(false);
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!(
            "that belongs to uid {}, who can read it whatever its mode",
            meta.uid()
        )));
    }
    if meta.nlink() > 1 {
        return Err(refuse(format!(
            "with {} names (hard links); the other names would keep the seeds",
            meta.nlink()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| refuse(format!("whose mode cannot be made 0600 ({e})")))?;
    }
    Ok(true)
}
