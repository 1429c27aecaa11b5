//! The command line that wazuh-integratord passes to a `custom-` integration.
//!
//! Wazuh 4.x (checked against `src/os_integrator/integrator.c` of v4.14.7) runs
//! `<integration> <alert file> <api_key> <hook_url> <"debug" or ""> <options file or "">
//! <timeout> <retries>`. It splits that line on spaces without a shell, so an unset value
//! is an empty argument and, without debug, a literal `> /dev/null 2>&1` may follow.
//! Releases before 4.7 stop after the debug flag.

use std::ffi::OsString;
use std::path::PathBuf;

use thiserror::Error;

/// The arguments of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub alert_file: PathBuf,
    pub api_key: String,
    pub hook_url: String,
    pub debug: bool,
    pub options_file: Option<PathBuf>,
    /// `<timeout>` of the integration block, in seconds.
    pub timeout_secs: Option<u64>,
    /// `<retries>` of the integration block.
    pub retries: Option<u32>,
}

/// The command line has no alert file.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "missing the alert file argument: wazuh-integratord runs \
     `custom-iocwatch ALERT_FILE API_KEY HOOK_URL [debug] [OPTIONS_FILE] [TIMEOUT] [RETRIES]`"
)]
pub struct MissingAlertFile;

/// Parses `args` (program name first). Only a missing alert file is an error: other
/// values that are absent or not understood are left unset, so a newer or older
/// integratord still gets a run.
pub fn parse(args: &[OsString]) -> Result<Invocation, MissingAlertFile> {
    let arg = |i: usize| args.get(i).map(|a| a.to_string_lossy().trim().to_string());
    let alert_file = arg(1).filter(|a| !a.is_empty()).ok_or(MissingAlertFile)?;

    let mut invocation = Invocation {
        alert_file: PathBuf::from(alert_file),
        api_key: arg(2).unwrap_or_default(),
        hook_url: arg(3).unwrap_or_default(),
        debug: false,
        options_file: None,
        timeout_secs: None,
        retries: None,
    };

    // Slots 4 and 5 hold the debug flag and the options file in that order, but some
    // releases leave one out, so each is recognised by its content.
    for value in [arg(4), arg(5)].into_iter().flatten() {
        if value == "debug" {
            invocation.debug = true;
        } else if value.ends_with("options") {
            invocation.options_file = Some(PathBuf::from(value));
        }
    }
    invocation.timeout_secs = arg(6).and_then(|v| v.parse().ok());
    invocation.retries = arg(7).and_then(|v| v.parse().ok());
    Ok(invocation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(values: &[&str]) -> Vec<OsString> {
        values.iter().map(OsString::from).collect()
    }

    #[test]
    fn full_command_line_of_wazuh_4_14() {
        let parsed = parse(&args(&[
            "/var/ossec/integrations",
            "/tmp/custom-iocwatch-1715000000-12345.alert",
            "key",
            "https://misp.example",
            "",
            "/tmp/custom-iocwatch-1715000000-6789.options",
            "10",
            "3",
            "> /dev/null 2>&1",
        ]))
        .expect("alert file present");
        assert!(!parsed.debug);
        assert_eq!(parsed.api_key, "key");
        assert_eq!(parsed.hook_url, "https://misp.example");
        assert_eq!(
            parsed.options_file,
            Some(PathBuf::from(
                "/tmp/custom-iocwatch-1715000000-6789.options"
            ))
        );
        assert_eq!(parsed.timeout_secs, Some(10));
        assert_eq!(parsed.retries, Some(3));
    }

    #[test]
    fn older_command_line_with_debug() {
        let parsed = parse(&args(&["x", "/tmp/a.alert", "", "", "debug"])).expect("parsed");
        assert!(parsed.debug);
        assert_eq!(parsed.api_key, "");
        assert_eq!(parsed.options_file, None);
        assert_eq!(parsed.timeout_secs, None);
    }

    #[test]
    fn missing_alert_file_is_an_error() {
        assert_eq!(parse(&args(&["x"])), Err(MissingAlertFile));
        assert_eq!(parse(&args(&["x", ""])), Err(MissingAlertFile));
    }

    #[test]
    fn unparsable_numbers_are_left_unset() {
        let parsed = parse(&args(&["x", "/tmp/a", "k", "u", "", "", "ten", "-1"])).expect("parsed");
        assert_eq!(parsed.timeout_secs, None);
        assert_eq!(parsed.retries, None);
    }
}
