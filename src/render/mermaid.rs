//! Mermaid flowcharts for a [`Picture`], which GitHub renders inside Markdown.

use crate::render::picture::{NodeKind, Picture};
use std::fmt::Write as _;

/// Mermaid labels are quoted strings in which `"` must be an entity; `<br>` breaks lines.
fn text(s: &str) -> String {
    let esc = s
        .replace('&', "#amp;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('\n', "<br>");
    format!("\"{esc}\"")
}

fn shape(kind: NodeKind, label: &str) -> String {
    let t = text(label);
    match kind {
        NodeKind::Entry => format!(">{t}]"),
        NodeKind::Chain | NodeKind::Family => format!("[{t}]"),
        NodeKind::Endpoint => format!("([{t}])"),
        NodeKind::Masquerade => format!("{{{{{t}}}}}"),
        NodeKind::Drop => format!("[/{t}\\]"),
        NodeKind::Other => format!("[({t})]"),
    }
}

/// What GitHub's Mermaid renders at most: larger diagrams show an error instead of the picture
/// (Mermaid's `maxTextSize` and `maxEdges` defaults).
pub const MAX_TEXT: usize = 50_000;
pub const MAX_EDGES: usize = 500;

/// Why GitHub would not render the text, if it would not.
pub fn too_large(text: &str, p: &Picture) -> Option<String> {
    let (chars, edges) = (text.len(), p.edges.len());
    (chars > MAX_TEXT || edges > MAX_EDGES).then(|| {
        format!(
            "the Mermaid text has {chars} characters and {edges} edges: GitHub renders at most {MAX_TEXT} characters and {MAX_EDGES} edges"
        )
    })
}

pub fn mermaid(p: &Picture) -> String {
    let mut out = String::from("flowchart LR\n");
    for (cluster, nodes) in &p.clusters() {
        if let Some(c) = cluster {
            let _ = writeln!(
                out,
                "  subgraph table_{c} [{}]",
                text(&format!("table {c}"))
            );
        }
        for (id, n) in nodes {
            let _ = writeln!(out, "    {id}{}", shape(n.kind, &n.label));
        }
        if cluster.is_some() {
            let _ = writeln!(out, "  end");
        }
    }
    for (k, e) in &p.edges {
        let arrow = if e.dashed { "-.->" } else { "-->" };
        if e.label.is_empty() {
            let _ = writeln!(out, "  {} {arrow} {}", k.from, k.to);
        } else {
            let _ = writeln!(out, "  {} {arrow}|{}| {}", k.from, text(&e.label), k.to);
        }
    }
    for (kind, class, fill) in [
        (NodeKind::Endpoint, "endpoint", "#c9ecc4"),
        (NodeKind::Masquerade, "masq", "#fde2b8"),
        (NodeKind::Drop, "drop", "#f6c6c6"),
        (NodeKind::Entry, "entry", "#dbe9f6"),
    ] {
        let ids: Vec<&str> = p
            .nodes
            .iter()
            .filter(|(_, n)| n.kind == kind)
            .map(|(id, _)| id.as_str())
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "  classDef {class} fill:{fill}");
            let _ = writeln!(out, "  class {} {class}", ids.join(","));
        }
    }
    out
}
