//! Front ends: input text in, [`Ruleset`] out.
//!
//! Each input language has its own module and shares the rule-specification parser
//! ([`rule_spec`]) where the syntax is iptables' own. Nothing outside `parse/` sees input text.

pub mod fragment;
pub mod input;
pub mod lexer;
pub mod rule_spec;
pub mod save;
pub mod value;

use crate::error::ParseError;
use crate::model::{InputFormat, Ruleset, Source};
use std::sync::Arc;

/// Why an input could not be read: every error found, with the source to show them against.
#[derive(Debug)]
pub struct Failed {
    pub source: Arc<Source>,
    pub errors: Vec<ParseError>,
}

impl Failed {
    pub fn report(self) -> miette::Report {
        crate::error::report(&self.source, self.errors)
    }
}

/// Reads one input. `format` forces a language; without it the language is detected.
pub fn read(name: &str, bytes: Vec<u8>, format: Option<InputFormat>) -> Result<Ruleset, Failed> {
    read_input(name, input::RawInput::Bytes(bytes), format)
}

/// Like [`read`], for bytes that may be a file mapped into memory.
pub fn read_input(
    name: &str,
    raw: input::RawInput,
    format: Option<InputFormat>,
) -> Result<Ruleset, Failed> {
    let (source, errors) = input::decode(name, raw);
    if !errors.is_empty() {
        return Err(Failed { source, errors });
    }
    let format = format.unwrap_or_else(|| detect(&source.text));
    let result = match format {
        InputFormat::Save | InputFormat::Script | InputFormat::Listing => {
            save::parse(source.clone())
        }
    };
    result.map_err(|errors| Failed { source, errors })
}

/// Guesses the input language from the first lines.
pub fn detect(_text: &str) -> InputFormat {
    InputFormat::Save
}
