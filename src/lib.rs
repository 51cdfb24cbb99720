//! kptrace: reads `iptables-save` dumps and explains what kube-proxy made the kernel do.
//!
//! The pipeline is visible in the module tree: [`parse`] (input text → model) → [`model`] (tables,
//! chains, rules) → [`graph`] (chains as a graph) → [`engine`] (packets through netfilter's hooks,
//! with exact probabilities) → [`kube`] (Services and their entry points recovered from the rules) →
//! [`render`] (tables, JSON, diagnostics). [`app`] runs the commands that [`cli`] describes.

pub mod app;
pub mod cli;
pub mod engine;
pub mod error;
pub mod graph;
pub mod harness;
pub mod kube;
pub mod lint;
pub mod model;
pub mod parse;
pub mod render;
pub mod synth;
pub mod synth_nft;
