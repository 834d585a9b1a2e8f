//! Quota windows: the calendar minute and the calendar month, in UTC. Every
//! replica names the current window from its own clock; skew between them
//! matters only in the instants around a boundary.

use std::time::Duration;
use time::{Month, OffsetDateTime};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Minutes since the epoch.
    pub minute: i64,
    /// `YYYY-MM`.
    pub month: String,
    pub minute_reset: Duration,
    pub month_reset: Duration,
    /// The month's length: the window of its quota.
    pub month_length: Duration,
}

impl Windows {
    pub fn now() -> Windows {
        Windows::at_ms(anno_tenancy::now_ms())
    }

    pub fn at_ms(ms: i64) -> Windows {
        let ms = ms.max(0);
        let minute = ms / 60_000;
        let minute_reset = Duration::from_millis((60_000 - ms % 60_000) as u64);
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (year, month) = (at.year(), at.month());
        let start = first_of(year, month);
        let end = match month {
            Month::December => first_of(year + 1, Month::January),
            m => first_of(year, m.next()),
        };
        let unix_ms = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
        Windows {
            minute,
            month: format!("{year:04}-{:02}", u8::from(month)),
            minute_reset,
            month_reset: Duration::from_millis((unix_ms(end) - ms).max(0) as u64),
            month_length: Duration::from_millis((unix_ms(end) - unix_ms(start)).max(0) as u64),
        }
    }
}

fn first_of(year: i32, month: Month) -> OffsetDateTime {
    time::Date::from_calendar_date(year, month, 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_the_calendar_minute_and_month_in_utc() {
        // 2026-12-31T23:59:30.250Z
        let ms = 1_798_761_570_250;
        let w = Windows::at_ms(ms);
        assert_eq!(w.month, "2026-12");
        assert_eq!(w.minute, ms / 60_000);
        assert_eq!(w.minute_reset, Duration::from_millis(29_750));
        assert_eq!(w.month_reset, Duration::from_millis(29_750));
        assert_eq!(w.month_length, Duration::from_secs(31 * 86_400));
        let feb = Windows::at_ms(1_801_440_000_000); // 2027-02-01T00:00:00Z
        assert_eq!(feb.month, "2027-02");
        assert_eq!(feb.month_length, Duration::from_secs(28 * 86_400));
    }
}
