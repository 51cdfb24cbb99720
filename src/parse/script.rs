//! Shell scripts of `iptables` commands: `iptables [-t TABLE] -N/-A/-I [N]/-D/-R/-P/-F/-X …`, with
//! `sudo`, comments, blank lines, `\` continuations and `ip6tables`, applied in order to an empty
//! rule set as iptables would apply them. Lines that are not iptables commands are skipped and
//! listed in a note.

use super::save::{lines, Line, State};
use crate::error::ParseError;
use crate::model::{Family, InputFormat, Ruleset, Source, Span};
use std::sync::Arc;

/// A shell variable that holds the iptables binary (`IPT=/sbin/iptables`, then `$IPT -A …`):
/// named for it, as every such script names it (`$IPT`, `${IPTABLES}`, `$IP6T`); IPv6 when its name
/// says so.
fn variable(word: &str) -> Option<bool> {
    let w = word.trim_matches('"');
    let name = w.strip_prefix("${").and_then(|n| n.strip_suffix('}'));
    let name = name.or_else(|| w.strip_prefix('$'))?;
    let upper = name.to_ascii_uppercase();
    (upper.contains("IPT") || upper.contains("IP6T") || upper.contains("IPTABLES"))
        .then(|| upper.contains("IP6"))
}

/// The command words that start an iptables invocation, with a path or not.
fn is_iptables(word: &str) -> Option<bool> {
    if let Some(v6) = variable(word) {
        return Some(v6);
    }
    // `IPT=/sbin/iptables` names the binary; it runs nothing.
    if word.contains('=') {
        return None;
    }
    let base = word.rsplit('/').next().unwrap_or(word);
    let base = base
        .strip_suffix("-legacy")
        .or_else(|| base.strip_suffix("-nft"))
        .unwrap_or(base);
    match base {
        "iptables" => Some(false),
        "ip6tables" => Some(true),
        _ => None,
    }
}

/// Whether a line of text is an iptables command (after an optional `sudo` and shell prompt).
pub fn is_command(line: &str) -> bool {
    split_command(line).is_some()
}

/// (is IPv6, byte offset of the options after the command word).
fn split_command(line: &str) -> Option<(bool, usize)> {
    let mut off = 0;
    let mut rest = line;
    // Prompts people paste along: `$ `, `# `, `➜  ~ `.
    for prefix in ["$ ", "# "] {
        if let Some(r) = rest.strip_prefix(prefix) {
            off += prefix.len();
            rest = r;
        }
    }
    loop {
        let trimmed = rest.trim_start();
        off += rest.len() - trimmed.len();
        rest = trimmed;
        let word_end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let word = &rest[..word_end];
        if word == "sudo" || word == "command" || word == "exec" {
            off += word_end;
            rest = &rest[word_end..];
            continue;
        }
        let v6 = is_iptables(word)?;
        return Some((v6, off + word_end));
    }
}

pub fn parse(source: Arc<Source>) -> Result<Ruleset, Vec<ParseError>> {
    // A `\` at a line's end continues the command on the next line; replacing the two bytes with
    // blanks keeps every offset (so spans still point into the user's text).
    let joined = source.text.replace("\\\r\n", "   ").replace("\\\n", "  ");
    let mut st = State::new(source.clone(), InputFormat::Script, false);
    st.eager = true;
    // A script may set up both families (`iptables …` and `ip6tables …`): they are two rule sets
    // in the kernel. The family of the first command is read; the other's commands are counted and
    // said in a note (give them as an input of their own).
    let family_of = |t: &str| split_command(t).map(|(v6, _)| v6);
    let first_v6 = lines(&joined)
        .filter(|l| !l.text.is_empty() && !l.text.starts_with('#'))
        .find_map(|l| family_of(l.text))
        .unwrap_or(false);
    let mut other_family: Vec<u32> = Vec::new();
    let mut v6 = false;
    let mut commands = 0usize;
    for line in lines(&joined) {
        if line.text.is_empty() || line.text.starts_with('#') {
            continue;
        }
        let Some((is_v6, after)) = split_command(line.text) else {
            st.skip(line.no);
            continue;
        };
        if is_v6 != first_v6 {
            other_family.push(line.no);
            continue;
        }
        v6 |= is_v6;
        // Options before the command: -t TABLE, -w [secs], -W usecs, -v, -n, --wait…
        let mut table = "filter";
        let mut table_span = line.span();
        let mut pos = after;
        let text = line.text;
        loop {
            let rest = &text[pos..];
            let trimmed = rest.trim_start();
            pos += rest.len() - trimmed.len();
            let end = trimmed.find([' ', '\t']).unwrap_or(trimmed.len());
            let word = &trimmed[..end];
            match word {
                "-t" | "--table" => {
                    let r = &trimmed[end..];
                    let t = r.trim_start();
                    let vstart = pos + end + (r.len() - t.len());
                    let vend = t.find([' ', '\t']).unwrap_or(t.len());
                    table = &t[..vend];
                    table_span = Span::new(line.start + vstart, line.start + vstart + vend);
                    pos = vstart + vend;
                }
                "-w" | "--wait" | "-W" | "--wait-interval" => {
                    pos += end;
                    let r = &text[pos..];
                    let t = r.trim_start();
                    let vend = t.find([' ', '\t']).unwrap_or(t.len());
                    if t[..vend].bytes().all(|b| b.is_ascii_digit() || b == b'.') && vend > 0 {
                        pos += (r.len() - t.len()) + vend;
                    }
                }
                "-v" | "--verbose" | "-n" | "--numeric" | "-x" | "--exact" => pos += end,
                _ if word.starts_with("--table=") => {
                    table = &word["--table=".len()..];
                    pos += end;
                }
                _ => break,
            }
        }
        st.select_table(table, table_span);
        let sub = Line {
            no: line.no,
            start: line.start + pos,
            text: &text[pos..],
        };
        st.line(&sub);
        commands += 1;
    }
    st.rs.family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
    if let (Some(first), Some(last)) = (other_family.first(), other_family.last()) {
        let (read, other) = if first_v6 {
            ("ip6tables", "iptables")
        } else {
            ("iptables", "ip6tables")
        };
        st.rs.note(
            format!(
                "the script also sets up the other address family: its {} `{other}` command{} (lines {first}–{last}) build a rule set of their own and were not read with the `{read}` ones; give them as a separate input",
                other_family.len(),
                if other_family.len() == 1 { "" } else { "s" }
            ),
            None,
        );
    }
    st.finish_skipped("are not iptables commands");
    let errors = st.errors();
    if commands == 0 && errors.is_empty() {
        return Err(vec![ParseError::new(
            Span::NONE,
            crate::error::ParseErrorKind::Other("no iptables command in the script".into()),
        )]);
    }
    if errors.is_empty() {
        Ok(st.rs)
    } else {
        Err(errors)
    }
}
