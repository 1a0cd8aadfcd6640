//! How often a Sync Job runs: every N minutes, hours or days, or a cron expression (UTC, five
//! fields, or six with seconds first; parsed by `croner`).
//!
//! Interval slots are anchored at a fixed instant (the process's creation), so a job every 15
//! minutes created at 10:07 runs at 10:22, 10:37, … whatever time each run took. The next run
//! is always the first slot strictly after "now": runs missed while no instance was up are not
//! replayed one by one, the overdue one runs once and the schedule continues from the present.

use std::str::FromStr;

use chrono::{DateTime, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::SyncError;

/// Longest interval: a year of days keeps every slot computation far from overflow.
const MAX_DAYS: u32 = 366;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Minutes,
    Hours,
    Days,
}

impl Unit {
    fn minutes(self) -> u32 {
        match self {
            Unit::Minutes => 1,
            Unit::Hours => 60,
            Unit::Days => 24 * 60,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Frequency {
    Every { every: u32, unit: Unit },
    Cron { cron: String },
}

impl Frequency {
    /// Checks the frequency; the error names what is wrong and what is accepted.
    pub fn validate(&self) -> Result<(), SyncError> {
        match self {
            Frequency::Every { every, unit } => {
                let minutes = u64::from(*every) * u64::from(unit.minutes());
                if *every == 0 || minutes > u64::from(MAX_DAYS * 24 * 60) {
                    return Err(SyncError::Invalid(format!(
                        "frequency 'every {every} {unit:?}' is out of range: use 1 minute to {MAX_DAYS} days"
                    )));
                }
                Ok(())
            }
            Frequency::Cron { cron } => parse_cron(cron).map(|_| ()),
        }
    }

    /// Parses the short form used on the command line: `15m`, `2h`, `1d`, or a cron
    /// expression such as `0 */2 * * *`.
    pub fn parse(text: &str) -> Result<Frequency, SyncError> {
        let text = text.trim();
        let short = text
            .strip_suffix('m')
            .map(|n| (n, Unit::Minutes))
            .or_else(|| text.strip_suffix('h').map(|n| (n, Unit::Hours)))
            .or_else(|| text.strip_suffix('d').map(|n| (n, Unit::Days)));
        let frequency = match short.and_then(|(n, unit)| n.parse::<u32>().ok().map(|n| (n, unit))) {
            Some((every, unit)) => Frequency::Every { every, unit },
            None => Frequency::Cron {
                cron: text.to_owned(),
            },
        };
        frequency.validate()?;
        Ok(frequency)
    }

    /// The first run strictly after `now`; interval slots count from `anchor`.
    pub fn next_after(&self, anchor: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, SyncError> {
        match self {
            Frequency::Every { every, unit } => {
                self.validate()?;
                let step = i64::from(*every) * i64::from(unit.minutes()) * 60;
                let elapsed = (now - anchor).num_seconds();
                let slots = if elapsed < 0 { 0 } else { elapsed / step + 1 };
                Ok(anchor + Duration::seconds(slots * step))
            }
            // Occurrences fall on whole seconds; croner keeps the fraction of `now`.
            Frequency::Cron { cron } => parse_cron(cron)?
                .find_next_occurrence(&now.with_nanosecond(0).unwrap_or(now), false)
                .map_err(|e| SyncError::Invalid(format!("cron expression '{cron}' never runs again: {e}"))),
        }
    }
}

fn parse_cron(expression: &str) -> Result<croner::Cron, SyncError> {
    croner::Cron::from_str(expression).map_err(|e| {
        SyncError::Invalid(format!(
            "'{expression}' is not a valid frequency: use every N minutes/hours/days (e.g. 15m, 2h, 1d) \
             or a cron expression such as '*/30 * * * *' ({e})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, m, 0).unwrap()
    }

    #[test]
    fn intervals_count_slots_from_the_anchor() {
        let every15 = Frequency::Every {
            every: 15,
            unit: Unit::Minutes,
        };
        assert_eq!(every15.next_after(at(10, 7), at(10, 7)).unwrap(), at(10, 22));
        assert_eq!(every15.next_after(at(10, 7), at(10, 21)).unwrap(), at(10, 22));
        assert_eq!(
            every15.next_after(at(10, 7), at(10, 22)).unwrap(),
            at(10, 37),
            "strictly after"
        );
        assert_eq!(
            every15.next_after(at(10, 7), at(9, 0)).unwrap(),
            at(10, 7),
            "not before the anchor"
        );
        let every2h = Frequency::Every {
            every: 2,
            unit: Unit::Hours,
        };
        assert_eq!(every2h.next_after(at(0, 0), at(3, 59)).unwrap(), at(4, 0));
        let daily = Frequency::Every {
            every: 1,
            unit: Unit::Days,
        };
        assert_eq!(
            daily.next_after(at(6, 0), at(7, 0)).unwrap(),
            at(6, 0) + Duration::days(1)
        );
    }

    #[test]
    fn missed_slots_collapse_into_one_next_run() {
        // Stopped from 10:00 to 13:10 with a job every 15 minutes: the next run is the next
        // slot after the restart, not the twelve slots missed in between.
        let every15 = Frequency::Every {
            every: 15,
            unit: Unit::Minutes,
        };
        assert_eq!(every15.next_after(at(10, 0), at(13, 10)).unwrap(), at(13, 15));
        let cron = Frequency::Cron {
            cron: "0 * * * *".into(),
        };
        assert_eq!(cron.next_after(at(0, 0), at(13, 10)).unwrap(), at(14, 0));
    }

    #[test]
    fn cron_expressions_give_their_next_occurrence() {
        let cron = Frequency::parse("*/20 8-9 * * *").unwrap();
        assert_eq!(cron.next_after(at(0, 0), at(7, 30)).unwrap(), at(8, 0));
        assert_eq!(cron.next_after(at(0, 0), at(8, 0)).unwrap(), at(8, 20));
        assert_eq!(
            cron.next_after(at(0, 0), at(9, 40)).unwrap(),
            at(8, 0) + Duration::days(1)
        );
        let fraction = at(7, 59) + Duration::milliseconds(1500);
        assert_eq!(
            cron.next_after(at(0, 0), fraction).unwrap(),
            at(8, 0),
            "on the whole second"
        );
    }

    #[test]
    fn short_forms_parse_and_bad_frequencies_are_refused_with_a_reason() {
        assert_eq!(
            Frequency::parse("15m").unwrap(),
            Frequency::Every {
                every: 15,
                unit: Unit::Minutes
            }
        );
        assert_eq!(
            Frequency::parse(" 2h ").unwrap(),
            Frequency::Every {
                every: 2,
                unit: Unit::Hours
            }
        );
        assert_eq!(
            Frequency::parse("1d").unwrap(),
            Frequency::Every {
                every: 1,
                unit: Unit::Days
            }
        );
        for bad in ["0m", "367d", "every day", "61 * * * *", ""] {
            let err = Frequency::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("frequency") || err.contains("out of range"),
                "{bad}: {err}"
            );
        }
        let json: Frequency = serde_json::from_str(r#"{"every":5,"unit":"hours"}"#).unwrap();
        assert_eq!(
            json,
            Frequency::Every {
                every: 5,
                unit: Unit::Hours
            }
        );
        let json: Frequency = serde_json::from_str(r#"{"cron":"0 6 * * MON"}"#).unwrap();
        assert!(json.validate().is_ok());
        assert!(serde_json::from_str::<Frequency>(r#"{"every":5,"unit":"weeks"}"#).is_err());
    }
}
