//! RFC 5322 3.3 dates (`Thu, 1 Jan 1970 00:00:00 +0000`) from a unix time and a UTC offset,
//! with the civil-calendar arithmetic they need.
//!
//! This module does not read a clock or know about time zones by name: the caller passes the
//! time (seconds since 1970-01-01T00:00:00Z) and the offset of the local time from UTC.

/// Largest UTC offset accepted, in minutes: RFC 5322 3.3 zones are `+hhmm`, and real ones lie
/// between -12:00 and +14:00.
pub const UTC_OFFSET_MIN_MAX: i32 = 23 * 60 + 59;

const SECONDS_PER_DAY: i64 = 86_400;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date and time of day (proleptic Gregorian calendar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilDateTime {
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 is Sunday.
    pub weekday: u32,
}

/// The date `days` days after 1970-01-01, as (year, month 1-12, day 1-31).
///
/// Howard Hinnant's `civil_from_days`: count in 400-year eras (146097 days each) of years that
/// start on 1 March, so that the leap day is the last day of its year.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097); // 0 ..= 146096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 = March .. 11 = February
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to the given date; the inverse of [`civil_from_days`].
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    debug_assert!((1..=12).contains(&month) && (1..=31).contains(&day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// True for Gregorian leap years.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The local date and time `unix_s` + `utc_offset_min` stands for. The result is kept within
/// the years 1900 to 9999, the range RFC 5322 3.3 dates can say with a 4-digit year (older
/// years are obsolete syntax, 4.3).
pub fn local_date_time(unix_s: i64, utc_offset_min: i32) -> CivilDateTime {
    let offset_min = utc_offset_min.clamp(-UTC_OFFSET_MIN_MAX, UTC_OFFSET_MIN_MAX);
    let earliest = days_from_civil(1900, 1, 1) * SECONDS_PER_DAY;
    let latest = days_from_civil(10_000, 1, 1) * SECONDS_PER_DAY - 1;
    let local_s = unix_s
        .saturating_add(i64::from(offset_min) * 60)
        .clamp(earliest, latest);
    let days = local_s.div_euclid(SECONDS_PER_DAY);
    let second_of_day = local_s.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    CivilDateTime {
        year,
        month,
        day,
        hour: (second_of_day / 3600) as u32,
        minute: (second_of_day / 60 % 60) as u32,
        second: (second_of_day % 60) as u32,
        // 1970-01-01 was a Thursday (4).
        weekday: (days + 4).rem_euclid(7) as u32,
    }
}

/// The RFC 5322 3.3 `date-time`: `Thu, 1 Jan 1970 00:00:00 +0000` (day without a leading
/// zero, 4-digit year, numeric zone). Offsets beyond ±23:59 are clamped.
pub fn rfc5322_date(unix_s: i64, utc_offset_min: i32) -> String {
    let mut out = String::with_capacity(31);
    push_rfc5322_date(&mut out, unix_s, utc_offset_min);
    out
}

/// Appends [`rfc5322_date`] to `out`. Written digit by digit: every message and every
/// `Received:` field carries a date, and the formatting machinery costs far more.
pub fn push_rfc5322_date(out: &mut String, unix_s: i64, utc_offset_min: i32) {
    let offset_min = utc_offset_min.clamp(-UTC_OFFSET_MIN_MAX, UTC_OFFSET_MIN_MAX);
    let local = local_date_time(unix_s, offset_min);
    out.push_str(WEEKDAYS[local.weekday as usize]);
    out.push_str(", ");
    if local.day >= 10 {
        push_digits(out, local.day / 10, 1);
    }
    push_digits(out, local.day % 10, 1);
    out.push(' ');
    out.push_str(MONTHS[(local.month - 1) as usize]);
    out.push(' ');
    // `local_date_time` keeps the year within 1900 to 9999: always four digits.
    push_digits(out, local.year.clamp(0, 9999) as u32, 4);
    out.push(' ');
    push_digits(out, local.hour, 2);
    out.push(':');
    push_digits(out, local.minute, 2);
    out.push(':');
    push_digits(out, local.second, 2);
    out.push(' ');
    out.push(if offset_min < 0 { '-' } else { '+' });
    let offset_abs = offset_min.unsigned_abs();
    push_digits(out, offset_abs / 60, 2);
    push_digits(out, offset_abs % 60, 2);
}

/// Appends the last `width` decimal digits of `value`, with leading zeros.
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(rfc5322_date(0, 0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(951_782_400, 0),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322_date(1_709_164_800, 0),
            "Thu, 29 Feb 2024 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322_date(1_000_000_000, 0),
            "Sun, 9 Sep 2001 01:46:40 +0000"
        );
        assert_eq!(
            rfc5322_date(2_147_483_647, 0),
            "Tue, 19 Jan 2038 03:14:07 +0000"
        );
        assert_eq!(rfc5322_date(-1, 0), "Wed, 31 Dec 1969 23:59:59 +0000");
        assert_eq!(
            rfc5322_date(4_102_444_800, 0),
            "Fri, 1 Jan 2100 00:00:00 +0000"
        );
    }

    #[test]
    fn offsets_move_the_local_time() {
        assert_eq!(rfc5322_date(0, 120), "Thu, 1 Jan 1970 02:00:00 +0200");
        assert_eq!(rfc5322_date(0, -330), "Wed, 31 Dec 1969 18:30:00 -0530");
        assert_eq!(
            rfc5322_date(1_700_000_000, 345),
            "Wed, 15 Nov 2023 03:58:20 +0545"
        );
        assert!(rfc5322_date(0, 10_000).ends_with("+2359"));
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2000));
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2100));
        // 1900 was not a leap year: 28 Feb 1900 is followed by 1 Mar 1900.
        let feb_28 = days_from_civil(1900, 2, 28);
        assert_eq!(civil_from_days(feb_28 + 1), (1900, 3, 1));
        let feb_28 = days_from_civil(2000, 2, 28);
        assert_eq!(civil_from_days(feb_28 + 1), (2000, 2, 29));
    }

    #[test]
    fn days_round_trip_over_centuries() {
        for days in (-25_567..2_932_896).step_by(97) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }

    #[test]
    fn out_of_range_is_clamped_to_four_digit_years() {
        assert_eq!(rfc5322_date(i64::MAX, 0), "Fri, 31 Dec 9999 23:59:59 +0000");
        assert_eq!(rfc5322_date(i64::MIN, 0), "Mon, 1 Jan 1900 00:00:00 +0000");
    }
}
