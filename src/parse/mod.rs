//! Front ends: input text in, [`Ruleset`] out.
//!
//! Each input language has its own module and shares the rule-specification parser
//! ([`rule_spec`]) where the syntax is iptables' own. Nothing outside `parse/` sees input text.

pub mod extensions;
pub mod fragment;
pub mod input;
pub mod lexer;
pub mod listing;
pub mod nft;
pub mod nft_json;
pub mod prompt;
pub mod rule_spec;
pub mod save;
pub mod script;
pub mod services;
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
        InputFormat::Script => script::parse(source.clone()),
        InputFormat::Listing => listing::parse(source.clone()),
        InputFormat::Save => save::parse(source.clone()),
        InputFormat::Nft => nft::parse(source.clone()),
        InputFormat::NftJson => nft_json::parse(source.clone()),
    };
    result.map_err(|errors| Failed { source, errors })
}

/// Guesses the input language from the first lines.
pub fn detect(text: &str) -> InputFormat {
    if nft_json::looks_like(text) {
        return InputFormat::NftJson;
    }
    if nft::looks_like(text) {
        return InputFormat::Nft;
    }
    let mut commands = 0;
    for l in save::lines(text)
        .filter(|l| !l.text.is_empty() && !l.text.starts_with('#'))
        .take(200)
    {
        let t = l.text;
        if t.starts_with('*') || t.starts_with(':') || t.starts_with("-A ") || t == "COMMIT" {
            return InputFormat::Save;
        }
        if t.starts_with("Chain ") && (t.contains("(policy ") || t.contains(" reference")) {
            return InputFormat::Listing;
        }
        if script::is_command(t)
            && [
                " -A ", " -I ", " -N ", " -P ", " -D ", " -R ", " -F ", " -X ",
            ]
            .iter()
            .any(|c| t.contains(c))
        {
            commands += 1;
            if commands >= 2 {
                return InputFormat::Script;
            }
        }
    }
    if commands > 0 {
        InputFormat::Script
    } else {
        InputFormat::Save
    }
}
