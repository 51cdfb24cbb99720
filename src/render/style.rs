//! Terminal styles. Output goes through anstream, which drops them for pipes and under NO_COLOR.

use anstyle::{AnsiColor, Style};

pub const BOLD: Style = Style::new().bold();
pub const BAD: Style = AnsiColor::Red.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default();
pub const GOOD: Style = AnsiColor::Green.on_default();
pub const DIM: Style = Style::new().dimmed();

pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// A borderless table that reads well when pasted into a chat or a ticket.
pub fn table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t
}

/// The table as text, without the blanks comfy-table pads the last column with: pasted into a chat,
/// trailing blanks only make lines wrap.
pub fn finish(t: &comfy_table::Table) -> String {
    let mut out = String::new();
    for line in t.lines() {
        out += line.trim_end();
        out.push('\n');
    }
    out
}
