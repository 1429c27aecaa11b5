//! The agent's only door to the kernel: inotify, poll, stat, open/read, rename and user names.
//!
//! Every `unsafe` block of the crate lives under this module, each with a `// SAFETY:` comment.
//! The rest of the crate sees plain Rust types and `io::Result`.

pub mod fs;
pub mod host;
pub mod inotify;
pub mod mounts;
pub mod poll;
pub mod users;
