//! UTC date formatting in the layouts of Wazuh alerts.

use std::time::{SystemTime, UNIX_EPOCH};

/// Splits seconds since the epoch into (year, month, day, hour, minute, second), UTC.
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);

    // Days to civil date: Howard Hinnant's `civil_from_days`, proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);

    let hour = (rem / 3600) as u32;
    let minute = (rem % 3600 / 60) as u32;
    let second = (rem % 60) as u32;
    (year, month, day, hour, minute, second)
}

fn date_time(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
}

/// Formats an alert `timestamp`: `2026-12-04T16:37:25.123+0000`.
pub fn alert_timestamp(time: SystemTime) -> String {
    let (secs, millis) = epoch_parts(time);
    format!("{}.{millis:03}+0000", date_time(secs))
}

/// Seconds since the epoch and the milliseconds within that second.
pub fn epoch_parts(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(e) => {
            let d = e.duration();
            let secs = -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0);
            let millis = (1000 - d.subsec_millis()) % 1000;
            (secs, millis)
        }
    }
}

/// Formats an `mtime_*` value of a `syscheck` object as Wazuh does: `2022-11-17T19:17:42`.
///
/// Wazuh writes `%FT%T%z` into a 20-byte buffer, so the zone is cut off; the time is
/// UTC here where Wazuh uses the manager's local time.
pub fn mtime(secs: i64) -> String {
    date_time(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_668_705_462_694);
        assert_eq!(alert_timestamp(t), "2022-11-17T17:17:42.694+0000");
        assert_eq!(mtime(0), "1970-01-01T00:00:00");
        assert_eq!(mtime(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(mtime(4_102_444_799), "2099-12-31T23:59:59");
    }

    #[test]
    fn formats_times_before_epoch() {
        let t = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(alert_timestamp(t), "1969-12-31T23:59:59.999+0000");
    }
}
