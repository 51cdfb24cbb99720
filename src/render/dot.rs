//! Graphviz DOT for a [`Picture`]: tables as clusters, shapes and colours by node kind.
//! Output is deterministic and every label is escaped, whatever quotes or backslashes comments hold.

use crate::render::picture::{NodeKind, Picture};
use std::fmt::Write as _;

/// A DOT string literal: `"` and `\` escaped, newlines as centred line breaks.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn style(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Entry => "shape=cds, style=filled, fillcolor=\"#dbe9f6\"",
        NodeKind::Chain => "shape=box, style=rounded",
        NodeKind::Family => "shape=box3d",
        NodeKind::Endpoint => "shape=box, style=filled, fillcolor=\"#c9ecc4\"",
        NodeKind::Masquerade => "shape=hexagon, style=filled, fillcolor=\"#fde2b8\"",
        NodeKind::Drop => "shape=octagon, style=filled, fillcolor=\"#f6c6c6\"",
        NodeKind::Other => "shape=note, style=dashed",
    }
}

pub fn dot(p: &Picture) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph kptrace {{");
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, fontname=\"Helvetica\", label={}, labelloc=t];",
        quote(&p.title)
    );
    let _ = writeln!(out, "  node [fontname=\"Helvetica\", fontsize=11];");
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=9];");
    for (cluster, nodes) in &p.clusters() {
        let indent = if cluster.is_some() { "    " } else { "  " };
        if let Some(c) = cluster {
            let _ = writeln!(out, "  subgraph {} {{", quote(&format!("cluster_{c}")));
            let _ = writeln!(
                out,
                "    label={}; style=dashed; color=\"#999999\";",
                quote(&format!("table {c}"))
            );
        }
        for (id, n) in nodes {
            let _ = writeln!(
                out,
                "{indent}{id} [label={}, {}];",
                quote(&n.label),
                style(n.kind)
            );
        }
        if cluster.is_some() {
            let _ = writeln!(out, "  }}");
        }
    }
    for (k, e) in &p.edges {
        let mut attrs = Vec::new();
        if !e.label.is_empty() {
            attrs.push(format!("label={}", quote(&e.label)));
        }
        if e.dashed {
            attrs.push("style=dashed".into());
        }
        if attrs.is_empty() {
            let _ = writeln!(out, "  {} -> {};", k.from, k.to);
        } else {
            let _ = writeln!(out, "  {} -> {} [{}];", k.from, k.to, attrs.join(", "));
        }
    }
    out.push_str("}\n");
    out
}
