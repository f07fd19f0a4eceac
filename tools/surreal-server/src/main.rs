//! `surreal`, the SurrealDB 3.3.5 server, for the remote-server tests.
#![recursion_limit = "256"]

fn main() -> std::process::ExitCode {
    surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
