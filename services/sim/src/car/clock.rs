//! Beijing time for the simulated cars: the working day and the weather. China keeps UTC+8
//! all year, so a fixed offset is exact.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc, Weekday};

/// Beijing time's offset from UTC.
const BEIJING_OFFSET: TimeDelta = TimeDelta::hours(8);
/// A working day's first and last departures, Beijing time (hours, minutes).
const SHIFT_START: (u32, u32) = (7, 30);
const SHIFT_END: (u32, u32) = (18, 30);

fn local(t: DateTime<Utc>) -> NaiveDateTime {
    (t + BEIJING_OFFSET).naive_utc()
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

fn is_working_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Whether `t` falls in working hours of a working day (Monday to Friday; public holidays
/// are not modelled).
pub fn is_working_time(t: DateTime<Utc>) -> bool {
    let l = local(t);
    is_working_day(l.date()) && (hm(SHIFT_START.0, SHIFT_START.1)..hm(SHIFT_END.0, SHIFT_END.1)).contains(&l.time())
}

/// The start of the next working shift after `t` (or `t`'s own day if it is a working day
/// and the shift has not started yet).
pub fn next_shift_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let l = local(t);
    let start = hm(SHIFT_START.0, SHIFT_START.1);
    let mut day = if l.time() < start { l.date() } else { l.date() + TimeDelta::days(1) };
    while !is_working_day(day) {
        day += TimeDelta::days(1);
    }
    day.and_time(start).and_utc() - BEIJING_OFFSET
}

/// Air temperature in Zhoushan at `t`, °C: a maritime climate from about 6 °C in late
/// January to 27 °C in late July, a few degrees warmer in the afternoon than at dawn.
pub fn ambient_temp_c(t: DateTime<Utc>) -> f64 {
    use std::f64::consts::TAU;
    let l = local(t);
    let season = (TAU * (f64::from(l.ordinal()) - 25.0) / 365.25).cos();
    let hour = f64::from(l.hour()) + f64::from(l.minute()) / 60.0;
    16.5 - 10.5 * season + 3.0 * (TAU * (hour - 9.0) / 24.0).sin()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn working_hours_are_beijing_office_hours_on_weekdays() {
        // 2025-11-26 is a Wednesday; 01:00 UTC is 09:00 in Beijing.
        assert!(is_working_time(utc(2025, 11, 26, 1, 0)));
        assert!(!is_working_time(utc(2025, 11, 26, 12, 0)), "20:00 Beijing");
        assert!(!is_working_time(utc(2025, 11, 29, 1, 0)), "Saturday");
    }

    #[test]
    fn the_next_shift_skips_the_weekend() {
        // Friday 20:00 Beijing -> Monday 07:30 Beijing = Sunday 23:30 UTC.
        assert_eq!(next_shift_start(utc(2025, 11, 28, 12, 0)), utc(2025, 11, 30, 23, 30));
        // Wednesday 06:00 Beijing -> the same morning.
        assert_eq!(next_shift_start(utc(2025, 11, 25, 22, 0)), utc(2025, 11, 25, 23, 30));
    }

    #[test]
    fn summer_is_warmer_than_winter() {
        let winter = ambient_temp_c(utc(2025, 1, 25, 6, 0));
        let summer = ambient_temp_c(utc(2025, 7, 25, 6, 0));
        assert!((2.0..12.0).contains(&winter), "{winter}");
        assert!((22.0..32.0).contains(&summer), "{summer}");
    }
}
