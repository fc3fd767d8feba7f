//! TLS libraries (and Go's crypto/tls): which functions are hooked, where their code is, and where
//! on that code a uprobe can sit cheaply.

pub mod discovery;
pub mod elf_symbols;
pub mod go_binary;
pub mod go_layout;
pub mod hooks;
pub mod proc_maps;
pub mod uprobe_sites;
