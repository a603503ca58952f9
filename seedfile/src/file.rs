//! Seed files on disk: [`write_file`] and [`read_path`].
//!
//! A seed file holds secrets in the clear, so it is created 0600 and replaced atomically: the
//! content goes to a temporary file in the same directory (created 0600), which is fsynced,
//! renamed over the target, and then the directory is fsynced. A crash leaves the old file or
//! the new one, never a torn one, and the result is 0600 whatever the old file's mode was.
//!
//! Nothing is overwritten silently: [`WriteMode`] says what to do with an existing file.
//! Appending keeps the existing text byte for byte in the line-based formats (Azure CSV with
//! its header, otpauth with its comments, privacyIDEA CSV) and adds rows after it, in the
//! file's own line endings; Graph JSON and PSKC are one document, so they are re-rendered from
//! the existing records plus the new ones (fields this crate does not model, such as
//! `assignTo`, are not kept). The rules are checked on the file as it will be, so a serial
//! already in the file, or a user's sixth Azure token, is refused unless forced.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::encoding::strip_bom;
use crate::format::Format;
use crate::read::{MAX_INPUT, Parsed, guess, parse, read_as};
use crate::record::TokenRecord;
use crate::validate::{Problem, Target, check};
use crate::write::{ProblemList, RenderError, Rendered, located, render_checked, render_unchecked};

/// What to do when the file exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail with [`FileError::Exists`] if the file exists.
    CreateNew,
    /// Add the records to the existing file (which must be a valid file of the same format);
    /// create it if it does not exist or is empty.
    Append,
    /// Write the records as the whole new content.
    Replace,
}

/// Why a seed file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// [`WriteMode::CreateNew`] and the file exists.
    #[error("{} already exists (append to it or replace it explicitly)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The records could not be rendered: rule problems (without `force`) or a record the
    /// format cannot carry.
    #[error("nothing written to {}: {source}", path.display())]
    Render {
        /// The file.
        path: PathBuf,
        /// What was wrong with the records.
        #[source]
        source: RenderError,
    },
    /// [`WriteMode::Append`] to a file that is not a valid file of the format: appending
    /// would keep or lose rows that cannot be read.
    #[error("{} is not a valid {format} file, so nothing was appended: {}", path.display(), ProblemList(problems))]
    ExistingInvalid {
        /// The file.
        path: PathBuf,
        /// The format it should be in.
        format: Format,
        /// What is wrong with it.
        problems: Vec<Problem>,
    },
    /// The file is larger than any seed file ([`MAX_INPUT`]).
    #[error("{} is too large for a seed file ({size} bytes)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes (at least this many).
        size: u64,
    },
    /// [`read_path`] without a format, on content that is no known format.
    #[error("cannot tell the format of {}; name it explicitly", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file system refused.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// What was being done, as a verb phrase.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl FileError {
    /// The rule problems, when the records were refused for breaking the target's rules or
    /// the existing file was invalid.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Render {
                source: RenderError::Rejected(problems),
                ..
            }
            | Self::ExistingInvalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> FileError + use<'a> {
    move |source| FileError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Writes `records` to `path` in `format`, following `mode`; see the module docs. Without
/// `force`, records that break the format's target rules are refused and nothing is written.
/// With `force` they are written, and their problems are returned (each with the line its
/// row is on in the file written, where that can be told) for the caller to show as
/// warnings; the list is empty when nothing needed forcing.
pub fn write_file(
    path: &Path,
    format: Format,
    records: &[TokenRecord],
    mode: WriteMode,
    force: bool,
) -> Result<Vec<Problem>, FileError> {
    let rendered = |result: Result<Rendered, RenderError>| {
        result.map_err(|source| FileError::Render {
            path: path.to_owned(),
            source,
        })
    };
    let (content, forced, no_clobber) = match mode {
        WriteMode::CreateNew => {
            if path.symlink_metadata().is_ok() {
                return Err(FileError::Exists {
                    path: path.to_owned(),
                });
            }
            let Rendered { text, forced } = rendered(render_checked(format, records, force))?;
            (text, forced, true)
        }
        WriteMode::Replace => {
            let Rendered { text, forced } = rendered(render_checked(format, records, force))?;
            (text, forced, false)
        }
        WriteMode::Append => {
            let existing = match read_limited(path) {
                Ok(bytes) => Some(bytes),
                Err(FileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    None
                }
                Err(e) => return Err(e),
            };
            let Rendered { text, forced } = match existing {
                Some(bytes) if !strip_bom(&bytes).iter().all(u8::is_ascii_whitespace) => {
                    append(path, format, &bytes, records, force)?
                }
                _ => rendered(render_checked(format, records, force))?,
            };
            (text, forced, false)
        }
    };
    replace_atomically(path, content.as_bytes(), no_clobber)?;
    Ok(forced)
}

/// The new content of a non-empty file `existing` with `records` added, and the problems
/// `force` let through.
fn append(
    path: &Path,
    format: Format,
    existing: &[u8],
    records: &[TokenRecord],
    force: bool,
) -> Result<Rendered, FileError> {
    let invalid = |problems: Vec<Problem>| FileError::ExistingInvalid {
        path: path.to_owned(),
        format,
        problems,
    };
    let raw = parse(format, existing);
    if !raw.broken.is_empty() {
        return Err(invalid(raw.broken));
    }
    let items: Vec<_> = raw
        .records
        .iter()
        .map(|(line, r)| (Some(*line), r))
        .chain(records.iter().map(|r| (None, r)))
        .collect();
    // Problems of the existing rows were there before; only the new rows are judged.
    let problems: Vec<Problem> = check(format.target(), &items)
        .into_iter()
        .filter(|p| p.line.is_none())
        .collect();
    let render_error = |source| FileError::Render {
        path: path.to_owned(),
        source,
    };
    if !force && !problems.is_empty() {
        return Err(render_error(RenderError::Rejected(problems)));
    }
    let text = if format.line_based() {
        let rows = render_unchecked(format, records, false).map_err(render_error)?;
        let text = std::str::from_utf8(existing)
            .map_err(|_| invalid(vec![Problem::new(None, None, "file is not valid UTF-8")]))?;
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let mut out = Zeroizing::new(String::with_capacity(text.len() + 2 * rows.len() + 2));
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push_str(newline);
        }
        for row in rows.lines() {
            out.push_str(row);
            out.push_str(newline);
        }
        out
    } else {
        let all: Vec<TokenRecord> = raw
            .records
            .iter()
            .map(|(_, r)| r.clone())
            .chain(records.iter().cloned())
            .collect();
        render_unchecked(format, &all, true).map_err(render_error)?
    };
    let forced = if problems.is_empty() {
        Vec::new()
    } else {
        located(format, text.as_bytes(), &raw.records, records)
    };
    Ok(Rendered { text, forced })
}

/// Writes `content` to a 0600 temporary file beside `path`, fsyncs it, renames it over `path`
/// (refusing to replace an existing file when `no_clobber`), and fsyncs the directory.
fn replace_atomically(path: &Path, content: &[u8], no_clobber: bool) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".oathkey-seedfile.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_error("set permissions on a temporary file in", dir))?;
    }
    temp.write_all(content)
        .map_err(io_error("write a temporary file in", dir))?;
    temp.as_file()
        .sync_all()
        .map_err(io_error("sync a temporary file in", dir))?;
    if no_clobber {
        temp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                FileError::Exists {
                    path: path.to_owned(),
                }
            } else {
                io_error("create", path)(e.error)
            }
        })?;
    } else {
        temp.persist(path)
            .map_err(|e| io_error("replace", path)(e.error))?;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync the directory", dir))?;
    Ok(())
}

/// The file's bytes, refusing anything over [`MAX_INPUT`] without reading it all.
fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let file = File::open(path).map_err(io_error("open", path))?;
    let mut bytes = Zeroizing::new(Vec::new());
    let limit = MAX_INPUT as u64 + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(io_error("read", path))?;
    if bytes.len() > MAX_INPUT {
        let size = fs::metadata(path).map_or(limit, |m| m.len().max(limit));
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    Ok(bytes)
}

/// Reads a seed file: in `format`, or in the format [`guess`] finds from the content and the
/// file's name. Returns the format used and what [`read`] found.
pub fn read_path(path: &Path, format: Option<Format>) -> Result<(Format, Parsed), FileError> {
    read_path_as(path, format, None)
}

/// Like [`read_path`], checking the records against `target`'s rules (default: the format's
/// own target); the target also settles the format when neither the content nor the name
/// tells ([`guess`]).
pub fn read_path_as(
    path: &Path,
    format: Option<Format>,
    target: Option<Target>,
) -> Result<(Format, Parsed), FileError> {
    let bytes = read_limited(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy());
    let format = format
        .or_else(|| guess(&bytes, name.as_deref(), target))
        .ok_or_else(|| FileError::UnknownFormat {
            path: path.to_owned(),
        })?;
    let target = target.unwrap_or_else(|| format.target());
    Ok((format, read_as(format, &bytes, target)))
}
