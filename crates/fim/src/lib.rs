//! File integrity monitoring agent: baseline, inotify, scheduled scans.
