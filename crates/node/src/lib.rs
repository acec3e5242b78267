//! The Vision Node binary's library: command-line interface, configuration, keys, genesis and
//! devnet generation, the validator process (`run`) and the devnet supervisor. The binary
//! (`main.rs`) only parses the command line and calls [`cli::Cli::run`].

pub mod api_node;
pub mod bench;
pub mod cli;
pub mod config;
pub mod devnet;
pub mod files;
pub mod init;
pub mod keys;
pub mod load;
pub mod logging;
pub mod netgen;
pub mod network;
pub mod run;
pub mod shards_cmd;
pub mod status;
