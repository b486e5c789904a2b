//! Calendar dates from Unix time, without a time-zone database: the capture
//! kernel has none, and dump names and crash times are in UTC. Shared by
//! PID 1 (dump directory names, the result record) and the host command.

/// Year, month, day, hour, minute, second (UTC) of `epoch_secs`.
pub fn utc_fields(epoch_secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (epoch_secs / 86_400) as i64;
    let secs_of_day = (epoch_secs % 86_400) as u32;
    // Days to civil date, after Howard Hinnant's public-domain algorithm:
    // shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
    )
}

/// `YYYYmmddHHMM`, the name of a dump directory.
pub fn dump_stamp(epoch_secs: u64) -> String {
    let (y, mo, d, h, mi, _) = utc_fields(epoch_secs);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}")
}

/// RFC 3339, for the result record.
pub fn rfc3339(epoch_secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(epoch_secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let cases: &[(u64, &str, &str)] = &[
            (0, "197001010000", "1970-01-01T00:00:00Z"),
            (951_782_400, "200002290000", "2000-02-29T00:00:00Z"),
            (1_709_251_199, "202402292359", "2024-02-29T23:59:59Z"),
            (1_798_416_000, "202612280000", "2026-12-28T00:00:00Z"),
            (4_102_444_800, "210001010000", "2100-01-01T00:00:00Z"),
            (4_107_542_399, "210002282359", "2100-02-28T23:59:59Z"),
            (4_107_542_400, "210003010000", "2100-03-01T00:00:00Z"),
        ];
        for (secs, stamp, text) in cases {
            assert_eq!(dump_stamp(*secs), *stamp, "{secs}");
            assert_eq!(rfc3339(*secs), *text, "{secs}");
        }
    }
}
