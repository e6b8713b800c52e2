//! Schedule expressions as EventBridge and EventBridge Scheduler read them — `rate(5 minutes)`,
//! `cron(0 12 * * ? *)`, and Scheduler's one-time `at(2026-12-24T18:00:00)` — parsed and
//! checked with AWS's rules, and when each fires next: a pure function of a time, so that tests
//! check it against known times without waiting.
//!
//! The grammar is AWS's ("Cron expressions reference", EventBridge user guide; "Schedule types",
//! EventBridge Scheduler user guide): six fields (minutes, hours, day-of-month, month,
//! day-of-week, year); `,` `-` `*` `/` everywhere; `?` in exactly one of the two day fields;
//! `L` and `W` in day-of-month; `L` and `#` in day-of-week (1 = SUN … 7 = SAT); month and day
//! names (`JAN`, `MON`); years 1970 to 2199. A rate's unit is singular for 1 and plural above.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// `rate(N unit)`: every N units, the first N units after the schedule starts.
    Rate {
        /// N, at least 1.
        value: u32,
        /// The unit.
        unit: RateUnit,
    },
    /// `cron(...)`: at the times its fields match, in the schedule's time zone.
    Cron(Box<Cron>),
    /// `at(yyyy-mm-ddThh:mm:ss)` (EventBridge Scheduler only): once, at that local time.
    At(NaiveDateTime),
}

/// The unit of a `rate(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// `minute`/`minutes`.
    Minute,
    /// `hour`/`hours`.
    Hour,
    /// `day`/`days` (24 hours, whatever daylight saving time does).
    Day,
}

impl RateUnit {
    fn seconds(self) -> u64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// A `cron(...)` expression's six fields, as sets of the values they match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    day_of_month: DayOfMonth,
    months: u16,
    day_of_week: DayOfWeek,
    /// Bit `y - 1970` for each matching year.
    years: [u64; 4],
    /// The fields as written, for display.
    text: String,
}

/// The day-of-month field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOfMonth {
    /// `?`: the day-of-week field decides.
    Any,
    /// Bit `d` for each matching day.
    Days(u32),
    /// `L`: the month's last day.
    Last,
    /// `LW`: the month's last weekday.
    LastWeekday,
    /// `nW`: the weekday nearest day n, within the month.
    NearestWeekday(u32),
}

/// The day-of-week field (1 = Sunday … 7 = Saturday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOfWeek {
    /// `?`: the day-of-month field decides.
    Any,
    /// Bit `d` for each matching day.
    Days(u8),
    /// `nL`: the month's last day n (`6L`: its last Friday); `L` alone is Saturday.
    Last(u32),
    /// `n#k`: the month's k-th day n (`3#2`: its second Tuesday).
    Nth(u32, u32),
}

const MIN_YEAR: i32 = 1970;
const MAX_YEAR: i32 = 2199;
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl ScheduleExpression {
    /// Reads `text`; the error says what is wrong in AWS's terms. `one_time` allows `at(...)`
    /// (EventBridge Scheduler's one-time schedules).
    pub fn parse(text: &str, one_time: bool) -> Result<Self, String> {
        let text = text.trim();
        let inside = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
        };
        if let Some(body) = inside("rate(") {
            parse_rate(body)
        } else if let Some(body) = inside("cron(") {
            Cron::parse(body).map(|c| Self::Cron(Box::new(c)))
        } else if let Some(body) = inside("at(").filter(|_| one_time) {
            NaiveDateTime::parse_from_str(body.trim(), "%Y-%m-%dT%H:%M:%S")
                .map(Self::At)
                .map_err(|_| format!("{text:?}: a one-time schedule is at(yyyy-mm-ddThh:mm:ss)"))
        } else {
            Err(format!(
                "{text:?} is not a schedule expression: use rate(value unit) or cron(minutes hours \
                 day-of-month month day-of-week year){}",
                if one_time {
                    " or at(yyyy-mm-ddThh:mm:ss)"
                } else {
                    ""
                }
            ))
        }
    }

    /// The first time after `after` when the schedule fires, or `None` when it never will
    /// again. `started` is when the schedule started (a rate counts from it); `zone` is the
    /// schedule's time zone (cron and `at` read their fields in it).
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        started: DateTime<Utc>,
        zone: Tz,
    ) -> Option<DateTime<Utc>> {
        match self {
            Self::Rate { value, unit } => {
                let period = i64::from(*value) * i64::try_from(unit.seconds()).ok()?;
                let elapsed = (after - started).num_seconds().max(0);
                let k = elapsed / period + 1;
                Some(started + chrono::Duration::seconds(k * period))
            }
            Self::Cron(cron) => cron.next_after(after, zone),
            Self::At(when) => {
                let at = earliest(zone.from_local_datetime(when))?;
                (at > after).then_some(at)
            }
        }
    }

    /// A rate's period.
    pub fn period(&self) -> Option<Duration> {
        match self {
            Self::Rate { value, unit } => {
                Some(Duration::from_secs(u64::from(*value) * unit.seconds()))
            }
            _ => None,
        }
    }
}

fn parse_rate(body: &str) -> Result<ScheduleExpression, String> {
    let shown = format!("rate({body})");
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [value, unit] = parts.as_slice() else {
        return Err(format!(
            "{shown}: a rate is rate(value unit), such as rate(5 minutes)"
        ));
    };
    let value: u32 =
        value.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
            format!("{shown}: the value must be a whole number from 1, not {value}")
        })?;
    let (unit, plural) = match *unit {
        "minute" => (RateUnit::Minute, false),
        "minutes" => (RateUnit::Minute, true),
        "hour" => (RateUnit::Hour, false),
        "hours" => (RateUnit::Hour, true),
        "day" => (RateUnit::Day, false),
        "days" => (RateUnit::Day, true),
        other => {
            return Err(format!(
                "{shown}: the unit must be minute(s), hour(s) or day(s), not {other}"
            ));
        }
    };
    if plural != (value > 1) {
        let name = unit.name();
        return Err(if value == 1 {
            format!("{shown}: with a value of 1 the unit is singular: rate(1 {name})")
        } else {
            format!("{shown}: with a value above 1 the unit is plural: rate({value} {name}s)")
        });
    }
    Ok(ScheduleExpression::Rate { value, unit })
}

impl Cron {
    fn parse(body: &str) -> Result<Self, String> {
        let shown = format!("cron({body})");
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields.as_slice() else {
            return Err(format!(
                "{shown}: a cron expression has six fields (minutes hours day-of-month month \
                 day-of-week year), not {}",
                fields.len()
            ));
        };
        let at = |field: &str, why: String| format!("{shown}: {field}: {why}");
        let minutes = Field::MINUTES.set(minutes).map_err(|w| at("minutes", w))?;
        let hours = Field::HOURS.set(hours).map_err(|w| at("hours", w))?;
        let months = Field::MONTHS.set(month).map_err(|w| at("month", w))?;
        let day_of_month = day_of_month(dom).map_err(|w| at("day-of-month", w))?;
        let day_of_week = day_of_week(dow).map_err(|w| at("day-of-week", w))?;
        match (day_of_month, day_of_week) {
            (DayOfMonth::Any, DayOfWeek::Any) => {
                return Err(format!(
                    "{shown}: only one of day-of-month and day-of-week can be ?"
                ));
            }
            (DayOfMonth::Any, _) | (_, DayOfWeek::Any) => {}
            _ => {
                return Err(format!(
                    "{shown}: one of day-of-month and day-of-week must be ? (AWS does not take \
                     both: {dom} and {dow})"
                ));
            }
        }
        let years = Field::YEARS.set(year).map_err(|w| at("year", w))?;
        Ok(Self {
            minutes: minutes[0],
            hours: narrow(hours[0]),
            day_of_month,
            months: narrow(months[0]),
            day_of_week,
            years,
            text: fields.join(" "),
        })
    }

    fn year(&self, year: i32) -> bool {
        let Ok(y) = u32::try_from(year - MIN_YEAR) else {
            return false;
        };
        y <= (MAX_YEAR - MIN_YEAR) as u32 && self.years[(y / 64) as usize] & (1 << (y % 64)) != 0
    }

    fn day(&self, date: NaiveDate) -> bool {
        let last = last_day(date);
        let day = date.day();
        let weekday = date.weekday().number_from_sunday();
        let is_weekday = (2..=6).contains(&weekday);
        let dom = match self.day_of_month {
            DayOfMonth::Any => true,
            DayOfMonth::Days(bits) => bits & (1 << day) != 0,
            DayOfMonth::Last => day == last,
            DayOfMonth::LastWeekday => {
                is_weekday && (day == last || (day + 1..=last).all(|d| !weekday_of(date, d)))
            }
            DayOfMonth::NearestWeekday(n) => n <= last && nearest_weekday(date, n) == day,
        };
        let dow = match self.day_of_week {
            DayOfWeek::Any => true,
            DayOfWeek::Days(bits) => bits & (1 << weekday) != 0,
            DayOfWeek::Last(n) => weekday == n && day + 7 > last,
            DayOfWeek::Nth(n, k) => weekday == n && (day - 1) / 7 + 1 == k,
        };
        dom && dow
    }

    /// The first matching minute after `after`, read in `zone`. A local time that does not
    /// exist (clocks going forward) is skipped; one that happens twice (clocks going back)
    /// fires once, the first time — as EventBridge Scheduler documents.
    fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let mut date = after.with_timezone(&zone).date_naive();
        while date.year() <= MAX_YEAR {
            if !self.year(date.year()) {
                date = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?;
                continue;
            }
            if self.months & (1 << date.month()) == 0 {
                date = first_of_next_month(date)?;
                continue;
            }
            if self.day(date) {
                for hour in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                    for minute in (0..60).filter(|m| self.minutes & (1 << m) != 0) {
                        let local = date.and_hms_opt(hour, minute, 0)?;
                        if let Some(t) = earliest(zone.from_local_datetime(&local))
                            && t > after
                        {
                            return Some(t);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

/// The UTC time of a local one: the first of two when clocks go back, none in a gap.
fn earliest(local: LocalResult<DateTime<Tz>>) -> Option<DateTime<Utc>> {
    match local {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

fn last_day(date: NaiveDate) -> u32 {
    first_of_next_month(date)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// Whether day `day` of `date`'s month is Monday to Friday.
fn weekday_of(date: NaiveDate, day: u32) -> bool {
    date.with_day(day)
        .is_some_and(|d| (2..=6).contains(&d.weekday().number_from_sunday()))
}

/// The weekday nearest day `n` of `date`'s month, without leaving the month.
fn nearest_weekday(date: NaiveDate, n: u32) -> u32 {
    let last = last_day(date);
    let Some(target) = date.with_day(n) else {
        return 0;
    };
    match target.weekday().number_from_sunday() {
        // Saturday: the Friday before, or the Monday after when the 1st is a Saturday.
        7 if n == 1 => 3,
        7 => n - 1,
        // Sunday: the Monday after, or the Friday before when it is the month's last day.
        1 if n == last => n - 2,
        1 => n + 1,
        _ => n,
    }
}

fn day_of_month(text: &str) -> Result<DayOfMonth, String> {
    match text {
        "?" => return Ok(DayOfMonth::Any),
        "L" => return Ok(DayOfMonth::Last),
        "LW" => return Ok(DayOfMonth::LastWeekday),
        _ => {}
    }
    if let Some(n) = text.strip_suffix('W') {
        return match n.parse::<u32>() {
            Ok(n @ 1..=31) => Ok(DayOfMonth::NearestWeekday(n)),
            _ => Err(format!(
                "{text}: W follows one day from 1 to 31 (15W: the weekday nearest the 15th)"
            )),
        };
    }
    Field::DAYS_OF_MONTH
        .set(text)
        .map(|bits| DayOfMonth::Days(narrow(bits[0])))
}

fn day_of_week(text: &str) -> Result<DayOfWeek, String> {
    match text {
        "?" => return Ok(DayOfWeek::Any),
        "L" => return Ok(DayOfWeek::Last(7)),
        _ => {}
    }
    let day = |t: &str| Field::DAYS_OF_WEEK.value(t);
    if let Some(n) = text.strip_suffix('L') {
        return day(n)
            .map(DayOfWeek::Last)
            .map_err(|why| format!("{text}: L follows one day (6L: the last Friday): {why}"));
    }
    if let Some((n, k)) = text.split_once('#') {
        let n = day(n).map_err(|why| format!("{text}: {why}"))?;
        return match k.parse::<u32>() {
            Ok(k @ 1..=5) => Ok(DayOfWeek::Nth(n, k)),
            _ => Err(format!(
                "{text}: # takes one day and an instance from 1 to 5 (3#2: the second Tuesday)"
            )),
        };
    }
    Field::DAYS_OF_WEEK
        .set(text)
        .map(|bits| DayOfWeek::Days(narrow(bits[0])))
}

/// The low bits of a field's set: its values all fit.
fn narrow<T: TryFrom<u64> + Default>(bits: u64) -> T {
    T::try_from(bits).unwrap_or_default()
}

/// One of the numeric fields: its range and names.
struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

impl Field {
    const MINUTES: Self = Self {
        min: 0,
        max: 59,
        names: &[],
    };
    const HOURS: Self = Self {
        min: 0,
        max: 23,
        names: &[],
    };
    const DAYS_OF_MONTH: Self = Self {
        min: 1,
        max: 31,
        names: &[],
    };
    const MONTHS: Self = Self {
        min: 1,
        max: 12,
        names: &MONTHS,
    };
    const DAYS_OF_WEEK: Self = Self {
        min: 1,
        max: 7,
        names: &DAYS,
    };
    const YEARS: Self = Self {
        min: MIN_YEAR as u32,
        max: MAX_YEAR as u32,
        names: &[],
    };

    /// One value: a number in range or a name (`JAN`, `mon`).
    fn value(&self, text: &str) -> Result<u32, String> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(self.min + i as u32);
        }
        match text.parse::<u32>() {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(format!(
                "{text:?} is not a value from {} to {}{}",
                self.min,
                self.max,
                match self.names {
                    [] => String::new(),
                    names => format!(
                        " or {}-{}",
                        names.first().unwrap_or(&""),
                        names.last().unwrap_or(&"")
                    ),
                }
            )),
        }
    }

    /// A list of `*`, values, ranges and increments, as a bit set (bit `v - min` for years,
    /// bit `v` otherwise).
    fn set(&self, text: &str) -> Result<[u64; 4], String> {
        let offset = if self.max > 63 { self.min } else { 0 };
        let mut bits = [0u64; 4];
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => match step.parse::<u32>() {
                    Ok(s) if s >= 1 => (range, s),
                    _ => return Err(format!("{item}: the increment after / must be from 1")),
                },
                None => (item, 1),
            };
            let (start, end) = match range {
                "*" => (self.min, self.max),
                "?" | "L" | "W" | "#" => {
                    return Err(format!("{range} cannot be used in this field"));
                }
                _ => match range.split_once('-') {
                    Some((a, b)) => (self.value(a)?, self.value(b)?),
                    // `5/15`: from 5 to the end; `5`: just 5.
                    None if item.contains('/') => (self.value(range)?, self.max),
                    None => {
                        let v = self.value(range)?;
                        (v, v)
                    }
                },
            };
            // A range may wrap (FRI-MON, 22-2).
            let span = if end >= start {
                end - start
            } else {
                end + self.max + 1 - self.min - start
            };
            let mut k = 0;
            while k <= span {
                let mut v = start + k;
                if v > self.max {
                    v = v - self.max - 1 + self.min;
                }
                let i = v - offset;
                bits[(i / 64) as usize] |= 1 << (i % 64);
                k += step;
            }
        }
        Ok(bits)
    }
}

impl fmt::Display for ScheduleExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rate { value, unit } => {
                let s = if *value == 1 { "" } else { "s" };
                write!(f, "rate({value} {}{s})", unit.name())
            }
            Self::Cron(cron) => write!(f, "cron({})", cron.text),
            Self::At(t) => write!(f, "at({})", t.format("%Y-%m-%dT%H:%M:%S")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .with_timezone(&Utc)
    }

    /// The next `n` fire times of `expr` after `after`, in UTC, as RFC 3339.
    fn fires(expr: &str, zone: Tz, after: &str, n: usize) -> Vec<String> {
        let e = ScheduleExpression::parse(expr, true).unwrap_or_else(|e| panic!("{e}"));
        let mut t = utc(after);
        let mut out = Vec::new();
        for _ in 0..n {
            match e.next_after(t, utc(after), zone) {
                Some(next) => {
                    out.push(next.format("%Y-%m-%dT%H:%M:%SZ").to_string());
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    fn error(expr: &str) -> String {
        match ScheduleExpression::parse(expr, false) {
            Ok(e) => panic!("{expr} parsed as {e:?}"),
            Err(e) => e,
        }
    }

    // The examples of the EventBridge user guide's "Cron expressions reference", with the
    // times they fire.
    #[test]
    fn eventbridge_guide_examples_fire_when_it_says() {
        let z = chrono_tz::UTC;
        // "Run at 10:00 am (UTC+0) every day"
        assert_eq!(
            fires("cron(0 10 * * ? *)", z, "2026-12-05T08:30:00Z", 2),
            ["2026-12-05T10:00:00Z", "2026-12-06T10:00:00Z"]
        );
        // "Run at 12:15 pm (UTC+0) every day"
        assert_eq!(
            fires("cron(15 12 * * ? *)", z, "2026-12-05T12:15:00Z", 1),
            ["2026-12-06T12:15:00Z"]
        );
        // "Run at 6:00 pm (UTC+0) every Monday through Friday" (5 Dec 2026 is a Saturday)
        assert_eq!(
            fires("cron(0 18 ? * MON-FRI *)", z, "2026-12-05T00:00:00Z", 2),
            ["2026-12-07T18:00:00Z", "2026-12-08T18:00:00Z"]
        );
        // "Run at 8:00 am (UTC+0) every first day of the month"
        assert_eq!(
            fires("cron(0 8 1 * ? *)", z, "2026-12-05T00:00:00Z", 2),
            ["2027-01-01T08:00:00Z", "2027-02-01T08:00:00Z"]
        );
        // "Run every 15 minutes"
        assert_eq!(
            fires("cron(0/15 * * * ? *)", z, "2026-12-05T08:31:00Z", 3),
            [
                "2026-12-05T08:45:00Z",
                "2026-12-05T09:00:00Z",
                "2026-12-05T09:15:00Z"
            ]
        );
        // "Run every 10 minutes Monday through Friday"
        assert_eq!(
            fires("cron(0/10 * ? * MON-FRI *)", z, "2026-12-05T08:31:00Z", 1),
            ["2026-12-07T00:00:00Z"]
        );
        // "Run every 5 minutes Monday through Friday between 8:00 am and 5:55 pm (UTC+0)"
        assert_eq!(
            fires("cron(0/5 8-17 ? * MON-FRI *)", z, "2026-12-07T17:54:00Z", 2),
            ["2026-12-07T17:55:00Z", "2026-12-08T08:00:00Z"]
        );
        // "Run at 9 a.m. (UTC) the first Monday of each month"
        assert_eq!(
            fires("cron(0 9 ? * 2#1 *)", z, "2026-12-05T00:00:00Z", 2),
            ["2026-12-07T09:00:00Z", "2027-01-04T09:00:00Z"]
        );
    }

    #[test]
    fn last_weekday_nth_and_nearest_weekday() {
        let z = chrono_tz::UTC;
        // The last day of the month, February of a leap year included.
        assert_eq!(
            fires("cron(0 0 L * ? *)", z, "2028-01-31T00:00:00Z", 2),
            ["2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z"]
        );
        // The last weekday: 31 Jan 2026 is a Saturday, so Friday the 30th.
        assert_eq!(
            fires("cron(0 0 LW * ? *)", z, "2026-01-01T00:00:00Z", 1),
            ["2026-01-30T00:00:00Z"]
        );
        // The last Friday of the month.
        assert_eq!(
            fires("cron(0 0 ? * 6L *)", z, "2026-12-01T00:00:00Z", 2),
            ["2026-12-25T00:00:00Z", "2027-01-29T00:00:00Z"]
        );
        // The weekday nearest the 15th: 15 Nov 2026 is a Sunday → Monday the 16th; 15 Aug
        // 2026 is a Saturday → Friday the 14th.
        assert_eq!(
            fires("cron(0 0 15W * ? *)", z, "2026-11-01T00:00:00Z", 1),
            ["2026-11-16T00:00:00Z"]
        );
        assert_eq!(
            fires("cron(0 0 15W * ? *)", z, "2026-08-01T00:00:00Z", 1),
            ["2026-08-14T00:00:00Z"]
        );
        // 1W when the 1st is a Saturday (1 Aug 2026): Monday the 3rd, not July.
        assert_eq!(
            fires("cron(0 0 1W * ? *)", z, "2026-07-31T00:00:00Z", 1),
            ["2026-08-03T00:00:00Z"]
        );
        // The second Tuesday, named months, lists and a year range.
        assert_eq!(
            fires(
                "cron(30 9 ? JAN,JUL 3#2 2027-2028)",
                z,
                "2026-01-01T00:00:00Z",
                3
            ),
            [
                "2027-01-12T09:30:00Z",
                "2027-07-13T09:30:00Z",
                "2028-01-11T09:30:00Z"
            ]
        );
        // A year that is over never fires again.
        assert!(fires("cron(0 0 1 1 ? 2020)", z, "2026-01-01T00:00:00Z", 1).is_empty());
        // A wrapping range of days (FRI-MON) and hours (22-1).
        assert_eq!(
            fires("cron(0 22-1 ? * FRI-MON *)", z, "2026-12-03T23:00:00Z", 4),
            [
                "2026-12-04T00:00:00Z",
                "2026-12-04T01:00:00Z",
                "2026-12-04T22:00:00Z",
                "2026-12-04T23:00:00Z"
            ]
        );
    }

    #[test]
    fn time_zones_and_daylight_saving_time_as_scheduler_documents() {
        let ny = chrono_tz::America::New_York;
        // 12:00 in New York is 17:00 UTC in winter, 16:00 in summer.
        assert_eq!(
            fires("cron(0 12 * * ? *)", ny, "2026-03-07T18:00:00Z", 2),
            ["2026-03-08T16:00:00Z", "2026-03-09T16:00:00Z"]
        );
        // Spring forward (8 Mar 2026, 02:00 → 03:00): 02:30 does not exist that day and is
        // skipped.
        assert_eq!(
            fires("cron(30 2 * * ? *)", ny, "2026-03-07T06:00:00Z", 2),
            ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"]
        );
        // Fall back (1 Nov 2026, 02:00 → 01:00): 01:30 happens twice and fires once.
        assert_eq!(
            fires("cron(30 1 * * ? *)", ny, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
        // A one-time schedule, read in its zone.
        assert_eq!(
            fires("at(2026-12-24T18:00:00)", ny, "2026-12-05T00:00:00Z", 2),
            ["2026-12-24T23:00:00Z"]
        );
    }

    #[test]
    fn a_rate_fires_n_units_after_the_start_then_every_n() {
        let start = utc("2026-12-05T08:30:20Z");
        let e =
            ScheduleExpression::parse("rate(5 minutes)", false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            e.next_after(start, start, chrono_tz::UTC),
            Some(utc("2026-12-05T08:35:20Z"))
        );
        assert_eq!(
            e.next_after(utc("2026-12-05T08:35:20Z"), start, chrono_tz::UTC),
            Some(utc("2026-12-05T08:40:20Z"))
        );
        assert_eq!(e.period(), Some(Duration::from_secs(300)));
        let day = ScheduleExpression::parse("rate(1 day)", false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(day.period(), Some(Duration::from_secs(86_400)));
        assert_eq!(day.to_string(), "rate(1 day)");
        let cron = ScheduleExpression::parse("cron(0  12 * * ? *)", false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cron.to_string(), "cron(0 12 * * ? *)");
    }

    #[test]
    fn mistakes_are_explained_in_awss_terms() {
        for (expr, says) in [
            ("rate(1 minutes)", "the unit is singular: rate(1 minute)"),
            ("rate(5 minute)", "the unit is plural: rate(5 minutes)"),
            ("rate(0 minutes)", "from 1, not 0"),
            ("rate(5 seconds)", "not seconds"),
            ("rate(5)", "rate(value unit)"),
            ("cron(0 12 * * *)", "six fields"),
            ("cron(0 12 * * * *)", "must be ?"),
            (
                "cron(0 12 ? * ? *)",
                "only one of day-of-month and day-of-week",
            ),
            (
                "cron(60 12 * * ? *)",
                "minutes: \"60\" is not a value from 0 to 59",
            ),
            ("cron(0 24 * * ? *)", "hours"),
            ("cron(0 12 32 * ? *)", "day-of-month"),
            ("cron(0 12 * FOO ? *)", "or JAN-DEC"),
            ("cron(0 12 ? * 8 *)", "or SUN-SAT"),
            ("cron(0 12 ? * 2#6 *)", "from 1 to 5"),
            // "If you use #, you can define only one expression in the day-of-week field."
            ("cron(0 12 ? * 3#1,6#3 *)", "# takes one day"),
            ("cron(0 12 * * ? 2200)", "year"),
            ("cron(0/0 12 * * ? *)", "increment"),
            ("cron(L 12 * * ? *)", "minutes"),
            ("at(2026-12-24T18:00:00)", "not a schedule expression"),
            ("every 5 minutes", "not a schedule expression"),
        ] {
            let e = error(expr);
            assert!(e.contains(says), "{expr}: {e}");
        }
    }
}
