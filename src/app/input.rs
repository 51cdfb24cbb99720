//! Reading the dumps a command was given: files, `-`, or standard input.

use super::{Failure, Result};
use crate::cli::InputFormatArg;
use crate::model::{InputFormat, Ruleset};
use crate::parse::input::RawInput;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy)]
pub struct FormatChoice(pub Option<InputFormatArg>);

impl FormatChoice {
    fn get(self) -> Option<InputFormat> {
        self.0.map(|f| match f {
            InputFormatArg::Save => InputFormat::Save,
            InputFormatArg::Script => InputFormat::Script,
            InputFormatArg::Listing => InputFormat::Listing,
            InputFormatArg::Nft => InputFormat::Nft,
            InputFormatArg::NftJson => InputFormat::NftJson,
        })
    }
}

fn read_bytes(path: Option<&Path>) -> Result<(String, RawInput)> {
    match path {
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(Failure::Input(miette::miette!(
                    help = "pipe a dump in: `iptables-save | kptrace …`, or name a file: `kptrace … node.rules`",
                    "no input: standard input is a terminal"
                )));
            }
            let mut buf = Vec::new();
            stdin
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::Input(miette::miette!("cannot read standard input: {e}")))?;
            Ok(("<stdin>".into(), RawInput::Bytes(buf)))
        }
        Some(p) => {
            let fail = |e: std::io::Error| {
                Failure::Input(miette::miette!("cannot read `{}`: {e}", p.display()))
            };
            let file = std::fs::File::open(p).map_err(fail)?;
            let meta = file.metadata().map_err(fail)?;
            // Regular files are mapped (no copy of a 200 MB dump); pipes, FIFOs and empty files are read.
            if meta.is_file() && meta.len() > 0 {
                // SAFETY: the map is read-only. As with every mmap reader (ripgrep makes the same
                // trade), a file truncated or rewritten by another process while kptrace runs is not
                // protected against; dumps are written once and then read.
                if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
                    return Ok((p.display().to_string(), RawInput::Mapped(map)));
                }
            }
            let mut buf = Vec::new();
            let mut file = file;
            file.read_to_end(&mut buf).map_err(fail)?;
            Ok((p.display().to_string(), RawInput::Bytes(buf)))
        }
    }
}

/// Reads and parses one input (`None` or `-`: standard input).
pub fn load(path: Option<&Path>, fmt: FormatChoice) -> Result<Ruleset> {
    let path = path.filter(|p| p.as_os_str() != "-");
    let (name, bytes) = read_bytes(path)?;
    crate::parse::read_input(&name, bytes, fmt.get()).map_err(|f| Failure::Input(f.report()))
}

/// An input that could not be read: its text when it was read (errors point into it), and why.
pub struct Unreadable {
    pub name: String,
    pub source: Option<std::sync::Arc<crate::model::Source>>,
    pub errors: Vec<crate::error::ParseError>,
    /// Why the file could not be opened or read at all.
    pub message: Option<String>,
    /// The report as other commands print it.
    pub report: miette::Report,
}

/// Reads every input named (or standard input), each on its own: a file that cannot be read
/// does not stop the others.
pub fn load_each(
    files: &[PathBuf],
    fmt: FormatChoice,
) -> Vec<std::result::Result<Ruleset, Unreadable>> {
    let one = |path: Option<&Path>| {
        let path = path.filter(|p| p.as_os_str() != "-");
        let name = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<stdin>".into());
        let (name, bytes) = match read_bytes(path) {
            Ok(x) => x,
            Err(Failure::Input(report)) => {
                return Err(Unreadable {
                    name,
                    source: None,
                    errors: Vec::new(),
                    message: Some(report.to_string()),
                    report,
                })
            }
            Err(Failure::No(m)) => {
                return Err(Unreadable {
                    name,
                    source: None,
                    errors: Vec::new(),
                    message: Some(m.clone()),
                    report: miette::miette!("{m}"),
                })
            }
        };
        crate::parse::read_input(&name, bytes, fmt.get()).map_err(|f| Unreadable {
            name: name.clone(),
            source: Some(f.source.clone()),
            errors: f.errors.clone(),
            message: None,
            report: f.report(),
        })
    };
    if files.is_empty() {
        return vec![one(None)];
    }
    files.iter().map(|f| one(Some(f))).collect()
}

/// Reads every input named (or standard input when none is).
pub fn load_all(files: &[PathBuf], fmt: FormatChoice) -> Result<Vec<Ruleset>> {
    if files.is_empty() {
        return Ok(vec![load(None, fmt)?]);
    }
    files.iter().map(|f| load(Some(f), fmt)).collect()
}

/// Errors met while parsing rules on demand turn the command's answer into exit 2.
pub fn check_late_errors(rs: &Ruleset) -> Result<()> {
    let errors = rs.take_errors();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::Input(crate::error::report(&rs.source, errors)))
    }
}
