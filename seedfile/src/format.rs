//! The five seed-file formats, their names on the command line and their file extensions.

use std::fmt;
use std::str::FromStr;

use crate::validate::Target;

/// A seed-file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Azure / Entra ID "OATH tokens" upload CSV (TOTP, SHA-1, 6 digits).
    AzureCsv,
    /// One `otpauth://` key URI per line.
    Otpauth,
    /// RFC 6030 PSKC 1.0 XML with plain (unencrypted) secrets.
    Pskc,
    /// The Microsoft Graph `hardwareOathDevices` bulk body.
    GraphJson,
    /// privacyIDEA's OATH CSV import (`serial, hexkey, type, digits, period`).
    PrivacyIdeaCsv,
}

impl Format {
    /// Every format, in the order they are documented.
    pub const ALL: [Format; 5] = [
        Format::AzureCsv,
        Format::Otpauth,
        Format::Pskc,
        Format::GraphJson,
        Format::PrivacyIdeaCsv,
    ];

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::AzureCsv => "azure-csv",
            Self::Otpauth => "otpauth",
            Self::Pskc => "pskc",
            Self::GraphJson => "graph-json",
            Self::PrivacyIdeaCsv => "privacyidea-csv",
        }
    }

    /// The format's name in sentences: "Azure CSV", "PSKC (XML)".
    pub fn title(self) -> &'static str {
        match self {
            Self::AzureCsv => "Azure CSV",
            Self::Otpauth => "otpauth URI",
            Self::Pskc => "PSKC (XML)",
            Self::GraphJson => "Graph JSON",
            Self::PrivacyIdeaCsv => "privacyIDEA CSV",
        }
    }

    /// "a" or "an", whichever goes before [`Format::title`].
    pub fn article(self) -> &'static str {
        match self {
            Self::AzureCsv | Self::Otpauth => "an",
            _ => "a",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::AzureCsv | Self::PrivacyIdeaCsv => "csv",
            Self::Otpauth => "txt",
            Self::Pskc => "xml",
            Self::GraphJson => "json",
        }
    }

    /// Whose rules a file of this format must follow.
    pub fn target(self) -> Target {
        match self {
            Self::AzureCsv => Target::Azure,
            Self::GraphJson => Target::Graph,
            Self::PrivacyIdeaCsv => Target::PrivacyIdea,
            Self::Otpauth | Self::Pskc => Target::Any,
        }
    }

    /// Whether rows are lines that can be appended to the file's text as it is.
    pub(crate) fn line_based(self) -> bool {
        matches!(self, Self::AzureCsv | Self::Otpauth | Self::PrivacyIdeaCsv)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown seed-file format {0:?} (expected azure-csv, otpauth, pskc, graph-json or privacyidea-csv)"
)]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownFormat(s.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
        }
        assert_eq!("AZURE-CSV".parse::<Format>(), Ok(Format::AzureCsv));
        assert_eq!(
            "csv".parse::<Format>(),
            Err(UnknownFormat("csv".into())),
            "no guessing between the two CSV formats"
        );
    }

    #[test]
    fn extensions_and_targets() {
        let ext: Vec<_> = Format::ALL.iter().map(|f| f.extension()).collect();
        assert_eq!(ext, ["csv", "txt", "xml", "json", "csv"]);
        assert_eq!(Format::AzureCsv.target(), Target::Azure);
        assert_eq!(Format::GraphJson.target(), Target::Graph);
        assert_eq!(Format::PrivacyIdeaCsv.target(), Target::PrivacyIdea);
        assert_eq!(Format::Pskc.target(), Target::Any);
        assert_eq!(Format::Otpauth.target(), Target::Any);
    }
}
