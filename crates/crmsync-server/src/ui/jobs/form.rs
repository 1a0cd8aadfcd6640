//! The form of a Sync Job (create and edit): its fields as typed, their first checks, and the
//! [`ProcessInput`] they come to. The rules themselves are the API's: the frequency is checked
//! with [`Frequency::validate`] here so that its message lands next to the frequency field,
//! and everything else by `schedule::create`/`update`, whose refusals [`place`] puts next to
//! the field they are about.

use crmsync_model::EntityName;
use crmsync_sync::process::{Frequency, Process, ProcessInput, SYNC_SERVICE, Step, Unit};

use crate::ui::forms::FieldErrors;

/// The fields as typed, kept to show the form again with its messages.
#[derive(Clone, Debug)]
pub struct JobForm {
    pub name: String,
    /// `every` or `cron`.
    pub kind: String,
    pub every: String,
    /// `minutes`, `hours` or `days`.
    pub unit: String,
    pub cron: String,
    /// `all` (every enabled entity) or `some` (the checked ones).
    pub scope: String,
    pub entities: Vec<String>,
}

impl Default for JobForm {
    fn default() -> Self {
        JobForm {
            name: String::new(),
            kind: "every".into(),
            every: "1".into(),
            unit: "hours".into(),
            cron: String::new(),
            scope: "all".into(),
            entities: Vec::new(),
        }
    }
}

impl JobForm {
    /// The form from posted fields (`entity` repeats, one per checked entity).
    pub fn from_fields(fields: &[(String, String)]) -> Self {
        let field = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        JobForm {
            name: field("name"),
            kind: if field("kind") == "cron" { "cron" } else { "every" }.into(),
            every: field("every"),
            unit: field("unit"),
            cron: field("cron"),
            scope: if field("scope") == "some" { "some" } else { "all" }.into(),
            entities: fields
                .iter()
                .filter(|(k, _)| k == "entity")
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// The form of an existing process, for editing.
    pub fn of(p: &Process) -> Self {
        let entities: Vec<String> = p.entities().iter().map(|e| e.to_string()).collect();
        let mut form = JobForm {
            name: p.name.clone(),
            scope: if entities.is_empty() { "all" } else { "some" }.into(),
            entities,
            ..JobForm::default()
        };
        match &p.frequency {
            Frequency::Every { every, unit } => {
                form.every = every.to_string();
                form.unit = unit_key(*unit).into();
            }
            Frequency::Cron { cron } => {
                form.kind = "cron".into();
                form.cron = cron.clone();
            }
        }
        form
    }

    pub fn checked(&self, entity: &str) -> bool {
        self.entities.iter().any(|e| e == entity)
    }

    /// The frequency typed, or a message next to its field (`every`, `unit` or `cron`).
    fn frequency(&self, errors: &mut FieldErrors) -> Option<Frequency> {
        let frequency = if self.kind == "cron" {
            let cron = self.cron.trim();
            if cron.is_empty() {
                errors.add(
                    "cron",
                    "Enter a cron expression, for example */30 * * * * (every 30 minutes).",
                );
                return None;
            }
            Frequency::Cron { cron: cron.into() }
        } else {
            let unit = match self.unit.as_str() {
                "minutes" => Unit::Minutes,
                "hours" => Unit::Hours,
                "days" => Unit::Days,
                _ => {
                    errors.add("unit", "Choose minutes, hours or days.");
                    return None;
                }
            };
            let Ok(every) = self.every.trim().parse::<u32>() else {
                errors.add(
                    "every",
                    "Enter a whole number of minutes, hours or days (1 or more).",
                );
                return None;
            };
            Frequency::Every { every, unit }
        };
        match frequency.validate() {
            Ok(()) => Some(frequency),
            Err(e) => {
                errors.add(self.frequency_field(), e.to_string());
                None
            }
        }
    }

    /// The field a message about the frequency belongs next to.
    pub fn frequency_field(&self) -> &'static str {
        if self.kind == "cron" { "cron" } else { "every" }
    }

    /// The steps typed: one `SyncService` step, of every enabled entity or of the checked ones.
    fn steps(&self, errors: &mut FieldErrors) -> Option<Vec<Step>> {
        let entities = if self.scope == "some" {
            if self.entities.is_empty() {
                errors.add(
                    "entities",
                    "Check the entities this job syncs, or choose All enabled entities.",
                );
                return None;
            }
            match self.entities.iter().map(|e| EntityName::parse(e)).collect() {
                Ok(names) => names,
                Err(e) => {
                    errors.add("entities", e.to_string());
                    return None;
                }
            }
        } else {
            Vec::new()
        };
        Some(vec![Step {
            function: SYNC_SERVICE.into(),
            entities,
        }])
    }

    /// What the form asks for as a create or an update, or the messages of its fields.
    pub fn input(&self, errors: &mut FieldErrors) -> Option<ProcessInput> {
        let frequency = self.frequency(errors);
        let steps = self.steps(errors);
        let (Some(frequency), Some(steps)) = (frequency, steps) else {
            return None;
        };
        Some(ProcessInput {
            name: Some(self.name.clone()),
            frequency: Some(frequency),
            steps: Some(steps),
            ..ProcessInput::default()
        })
    }

    /// Puts a refusal of the process rules next to the field it is about (the whole form when
    /// it is about none of them, e.g. publishing and activating).
    pub fn place(&self, errors: &mut FieldErrors, message: String) {
        let lower = message.to_lowercase();
        let field = if lower.contains("name") {
            "name"
        } else if lower.contains("frequency") || lower.contains("cron") {
            self.frequency_field()
        } else if lower.contains("step") || lower.contains("entit") {
            "entities"
        } else {
            ""
        };
        errors.add(field, message);
    }
}

pub fn unit_key(unit: Unit) -> &'static str {
    match unit {
        Unit::Minutes => "minutes",
        Unit::Hours => "hours",
        Unit::Days => "days",
    }
}

/// A frequency in words: `Every 15 minutes`, `Every hour`, `Cron 0 6 * * MON (UTC)`.
pub fn describe(frequency: &Frequency) -> String {
    match frequency {
        Frequency::Every { every: 1, unit } => {
            format!("Every {}", unit_key(*unit).trim_end_matches('s'))
        }
        Frequency::Every { every, unit } => format!("Every {every} {}", unit_key(*unit)),
        Frequency::Cron { cron } => format!("Cron {cron} (UTC)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> JobForm {
        let fields: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        JobForm::from_fields(&fields)
    }

    #[test]
    fn a_good_form_becomes_the_api_input() {
        let f = form(&[
            ("name", "Nightly"),
            ("kind", "every"),
            ("every", "15"),
            ("unit", "minutes"),
            ("scope", "some"),
            ("entity", "account"),
            ("entity", "contact"),
        ]);
        let mut errors = FieldErrors::default();
        let input = f.input(&mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            input.frequency,
            Some(Frequency::Every {
                every: 15,
                unit: Unit::Minutes
            })
        );
        let steps = input.steps.unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].entities.len(), 2);
        let f = form(&[("name", "C"), ("kind", "cron"), ("cron", " 0 6 * * MON ")]);
        let input = f.input(&mut FieldErrors::default()).unwrap();
        assert_eq!(
            input.frequency,
            Some(Frequency::Cron {
                cron: "0 6 * * MON".into()
            })
        );
        assert!(
            input.steps.unwrap()[0].entities.is_empty(),
            "all enabled entities"
        );
    }

    #[test]
    fn bad_frequencies_and_selections_get_a_message_next_to_their_field() {
        let cases = [
            (vec![("every", "0"), ("unit", "minutes")], "every", "out of range"),
            (vec![("every", "x"), ("unit", "hours")], "every", "whole number"),
            (vec![("every", "400"), ("unit", "days")], "every", "out of range"),
            (
                vec![("every", "1"), ("unit", "weeks")],
                "unit",
                "minutes, hours or days",
            ),
            (
                vec![("kind", "cron"), ("cron", "61 * * * *")],
                "cron",
                "not a valid frequency",
            ),
            (vec![("kind", "cron"), ("cron", "")], "cron", "cron expression"),
            (
                vec![("every", "1"), ("unit", "days"), ("scope", "some")],
                "entities",
                "Check",
            ),
        ];
        for (pairs, field, text) in cases {
            let mut pairs = pairs;
            pairs.push(("name", "J"));
            let mut errors = FieldErrors::default();
            assert!(form(&pairs).input(&mut errors).is_none(), "{pairs:?}");
            let message = errors
                .get(field)
                .unwrap_or_else(|| panic!("{pairs:?}: {errors:?}"));
            assert!(message.contains(text), "{pairs:?}: {message}");
        }
    }

    #[test]
    fn refusals_of_the_rules_land_next_to_what_they_are_about() {
        let f = form(&[("kind", "cron")]);
        let cases = [
            ("a process name has 1 to 100 characters", "name"),
            ("frequency 'every 0 Minutes' is out of range", "cron"),
            ("unknown step function 'Wash'", "entities"),
            ("process 'J' is a draft: publish it before activating it", ""),
        ];
        for (message, field) in cases {
            let mut errors = FieldErrors::default();
            f.place(&mut errors, message.into());
            assert_eq!(errors.get(field), Some(message), "{message}");
        }
    }

    #[test]
    fn frequencies_read_as_words() {
        let every = |every, unit| Frequency::Every { every, unit };
        assert_eq!(describe(&every(1, Unit::Hours)), "Every hour");
        assert_eq!(describe(&every(15, Unit::Minutes)), "Every 15 minutes");
        assert_eq!(
            describe(&Frequency::Cron {
                cron: "0 6 * * *".into()
            }),
            "Cron 0 6 * * * (UTC)"
        );
    }
}
