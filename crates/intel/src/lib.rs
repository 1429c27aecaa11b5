//! Threat-intel store (SQLite), warninglists and the in-memory detection index.
