//! The command lines people paste with their rules (`root@node:~# iptables -t nat -S | grep X`):
//! which table the output that follows comes from.

/// The table a pasted command line prints, when the line is an iptables command: `Some(Some(t))`
/// for one table (`-t nat`, or `filter` for `iptables -S`/`-L` without `-t`), `Some(None)` for a
/// command that prints every table (`iptables-save` without `-t`), None when the line is not an
/// iptables command.
pub fn table_of(line: &str) -> Option<Option<String>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| {
        let base = w.rsplit('/').next().unwrap_or(w);
        let base = base.trim_start_matches(['$', '#', '>']);
        base.starts_with("iptables") || base.starts_with("ip6tables")
    })?;
    let cmd = words[at].rsplit('/').next().unwrap_or(words[at]);
    let save = cmd.contains("-save");
    // The command's own options end at a pipe.
    let opts: Vec<&str> = words[at + 1..]
        .iter()
        .take_while(|w| !w.starts_with('|') && !w.starts_with(">"))
        .copied()
        .collect();
    let mut named = None;
    for (i, w) in opts.iter().enumerate() {
        if *w == "-t" || *w == "--table" {
            named = opts.get(i + 1).map(|t| t.to_string());
        } else if let Some(t) = w.strip_prefix("--table=") {
            named = Some(t.to_string());
        } else if w.starts_with("-t") && !w.starts_with("--") && w.len() > 2 {
            named = Some(w[2..].to_string());
        }
    }
    if named.is_some() {
        return Some(named);
    }
    if save {
        return Some(None);
    }
    // `iptables -S`, `-L`, `-nvL`: without `-t`, the filter table.
    let lists = opts.iter().any(|w| {
        matches!(*w, "--list" | "--list-rules")
            || (w.starts_with('-') && !w.starts_with("--") && (w.contains('L') || w.contains('S')))
    });
    Some(lists.then(|| "filter".to_string()))
}

#[cfg(test)]
mod tests {
    use super::table_of;

    #[test]
    fn prompts_name_their_table() {
        let t = |s: &str| table_of(s).flatten();
        assert_eq!(
            t("[root@m ~]# iptables -t nat -S | grep KUBE-SVC-X").as_deref(),
            Some("nat")
        );
        assert_eq!(
            t("$ sudo iptables-save -t nat | grep nginx").as_deref(),
            Some("nat")
        );
        assert_eq!(
            t("# iptables -tnat -nvL --line-numbers").as_deref(),
            Some("nat")
        );
        assert_eq!(t("root@node:~# iptables -S").as_deref(), Some("filter"));
        assert_eq!(t("root@node:~# iptables-save"), None);
        assert_eq!(table_of("root@node:~# iptables-save"), Some(None));
        assert_eq!(table_of("-A KUBE-SERVICES -j X"), None);
    }
}
