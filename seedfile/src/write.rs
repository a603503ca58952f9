//! Writing records in a format: [`render`].
//!
//! A record that breaks the target's rules is refused with every problem
//! ([`RenderError::Rejected`]) unless the caller forces it: then it is written as it is, and
//! the target will reject that row at upload. A record the format cannot describe at all
//! (HOTP in Azure CSV, SHA-256 where there is no hash column, 8 digits where there is no
//! digits column) is never written, forced or not ([`RenderError::Other`]): the file would
//! describe a different token, whose codes would not match the key's.
//!
//! Output goes into one zeroizing buffer sized up front, so the text holding the secrets is
//! not copied around by reallocation.

use std::fmt;

use zeroize::Zeroizing;

use crate::format::Format;
use crate::record::TokenRecord;
use crate::validate::{Problem, check, validate};
use crate::{azure, graph, otpauth, privacyidea, pskc};

/// Why records could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Records break the target's rules (every problem is listed); `force` writes them anyway.
    #[error("{}", ProblemList(.0))]
    Rejected(Vec<Problem>),
    /// A record the format cannot describe; no `force` helps.
    #[error("{0}")]
    Other(String),
}

/// Problems as one message: a count and the first few.
pub(crate) struct ProblemList<'a>(pub &'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 10;
        let n = self.0.len();
        write!(f, "{n} problem{}: ", if n == 1 { "" } else { "s" })?;
        for (i, p) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        if n > SHOWN {
            write!(f, "; and {} more", n - SHOWN)?;
        }
        Ok(())
    }
}

/// Renders `records` as a whole file of `format`, checked against the format's target
/// ([`Format::target`]).
pub fn render(
    format: Format,
    records: &[TokenRecord],
    force: bool,
) -> Result<Zeroizing<String>, RenderError> {
    render_checked(format, records, force).map(|rendered| rendered.text)
}

/// A rendered file and what `force` let into it.
pub struct Rendered {
    /// The file's content.
    pub text: Zeroizing<String>,
    /// The problems of the rows written although the target will reject them (only with
    /// `force`), each with the line its row starts on in `text` where that can be told. The
    /// caller shows them as warnings: the upload will fail on these rows.
    pub forced: Vec<Problem>,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field(
                "text",
                &format_args!("[{} bytes, redacted]", self.text.len()),
            )
            .field("forced", &self.forced)
            .finish()
    }
}

/// Like [`render`], and also returns the problems that `force` let through, with their lines,
/// so that forcing is never silent.
pub fn render_checked(
    format: Format,
    records: &[TokenRecord],
    force: bool,
) -> Result<Rendered, RenderError> {
    let problems = validate(format.target(), records);
    if !force && !problems.is_empty() {
        return Err(RenderError::Rejected(problems));
    }
    let text = render_unchecked(format, records, true)?;
    let forced = if problems.is_empty() {
        Vec::new()
    } else {
        located(format, text.as_bytes(), &[], records)
    };
    Ok(Rendered { text, forced })
}

/// The target's problems of the `new` records once written into `text`, the output, which
/// holds the `existing` records (with their lines in the old file) and then the new ones.
/// Each problem gets the line its row starts on in `text`, found by reading `text` back; if
/// that does not give every record back (a forced row the format's reader cannot read), the
/// new rows' problems have no line but still their serial.
pub(crate) fn located(
    format: Format,
    text: &[u8],
    existing: &[(usize, TokenRecord)],
    new: &[TokenRecord],
) -> Vec<Problem> {
    let back = crate::read::parse(format, text);
    let all = existing.iter().map(|(_, r)| r).chain(new);
    let read_back = back.records.len() == existing.len() + new.len();
    let lines: Vec<Option<usize>> = if read_back {
        back.records.iter().map(|(line, _)| Some(*line)).collect()
    } else {
        existing
            .iter()
            .map(|(line, _)| Some(*line))
            .chain(new.iter().map(|_| None))
            .collect()
    };
    let new_lines: Vec<Option<usize>> = if read_back {
        lines[existing.len()..].to_vec()
    } else {
        vec![None]
    };
    let items: Vec<(Option<usize>, &TokenRecord)> = lines.iter().copied().zip(all).collect();
    check(format.target(), &items)
        .into_iter()
        .filter(|p| new_lines.contains(&p.line))
        .collect()
}

/// Renders without the target's rules. With `whole` unset, line-based formats give only the
/// rows (no Azure header), to go after an existing file's text.
pub(crate) fn render_unchecked(
    format: Format,
    records: &[TokenRecord],
    whole: bool,
) -> Result<Zeroizing<String>, RenderError> {
    let estimate = 512
        + records
            .iter()
            .map(|r| {
                700 + 2 * r.secret.base32_len()
                    + 6 * (r.serial.len() + r.user.len() + r.manufacturer.len() + r.model.len())
            })
            .sum::<usize>();
    let mut out = Zeroizing::new(String::with_capacity(estimate));
    let result = match format {
        Format::AzureCsv => azure::render(records, whole, &mut out),
        Format::Otpauth => otpauth::render(records, &mut out),
        Format::Pskc => pskc::render(records, &mut out),
        Format::GraphJson => graph::render(records, &mut out),
        Format::PrivacyIdeaCsv => privacyidea::render(records, &mut out),
    };
    result.map_err(|problem| RenderError::Other(problem.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Algorithm, Kind, Secret};

    fn record(serial: &str) -> TokenRecord {
        let mut r = TokenRecord::totp(
            serial,
            "alice@contoso.com",
            Secret::new(b"12345678901234567890".to_vec()),
        );
        r.manufacturer = "oathkey".into();
        r.model = "virtual key".into();
        r
    }

    #[test]
    fn rule_breaks_are_rejected_unless_forced() {
        let mut r = record("0012345");
        r.period = 45;
        let err = render(Format::AzureCsv, &[r.clone()], false).expect_err("period 45");
        assert_eq!(
            err.to_string(),
            "1 problem: serial 0012345: time interval 45 is not supported; use 30 or 60 seconds"
        );
        let text = render(Format::AzureCsv, &[r], true).expect("forced");
        assert!(text.contains(",45,"), "{}", text.as_str());
    }

    #[test]
    fn what_the_format_cannot_carry_is_refused_even_forced() {
        let mut r = record("0012345");
        r.kind = Kind::Hotp;
        assert!(matches!(
            render(Format::AzureCsv, &[r.clone()], false),
            Err(RenderError::Rejected(_))
        ));
        assert_eq!(
            render(Format::AzureCsv, &[r.clone()], true),
            Err(RenderError::Other(
                "serial 0012345: Azure CSV cannot carry HOTP tokens".into()
            ))
        );
        assert_eq!(
            render(Format::GraphJson, &[r], true),
            Err(RenderError::Other(
                "serial 0012345: Graph cannot carry HOTP tokens".into()
            ))
        );
        let mut r = record("7");
        r.algorithm = Algorithm::Sha256;
        assert_eq!(
            render(Format::PrivacyIdeaCsv, &[r.clone()], true),
            Err(RenderError::Other(
                "serial 7: privacyIDEA CSV has no hash column and cannot carry SHA-256".into()
            ))
        );
        r.algorithm = Algorithm::Sha1;
        r.digits = 8;
        assert_eq!(
            render(Format::AzureCsv, &[r.clone()], true),
            Err(RenderError::Other(
                "serial 7: Azure CSV has no digits column and cannot carry 8-digit codes".into()
            ))
        );
        r.serial = "bad\u{1}".into();
        r.digits = 6;
        assert!(matches!(
            render(Format::Pskc, &[r], true),
            Err(RenderError::Other(m)) if m.contains("control characters")
        ));
    }

    #[test]
    fn long_problem_lists_are_cut() {
        let records: Vec<_> = (0..12).map(|_| record("same")).collect();
        let err = render(Format::GraphJson, &records, false).expect_err("duplicates");
        let text = err.to_string();
        assert!(text.starts_with("11 problems: "), "{text}");
        assert!(text.ends_with("; and 1 more"), "{text}");
    }
}
