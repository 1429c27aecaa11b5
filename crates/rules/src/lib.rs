//! Wazuh 4.x XML rules engine and alert documents.
