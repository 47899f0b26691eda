//! Logic of pg_storage_ext that needs no database. Each module is used by the matching
//! capability folder of the extension crate and is tested with plain `cargo test`.

pub mod audit;
pub mod auth;
pub mod cache;
pub mod cert;
pub mod host;
pub mod http;
pub mod jsonb;
pub mod lint;
pub mod names;
pub mod partition;
pub mod prometheus;
pub mod report;
pub mod routing;
pub mod search;
pub mod stack;
