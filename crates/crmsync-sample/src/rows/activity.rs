//! `lead` and `task` rows: the sales funnel's prospects and the work done on the other records.
//!
//! Leads name no other record: a lead's company is drawn on its own, as a prospect is not yet a
//! customer. A task's `regardingobjectid` names a random account (30%), contact (30%),
//! opportunity (25%) or lead (10%), and nothing in the remaining 5% or when the chosen entity
//! has no records. Inactive tasks are completed: 100% done with a duration, due within 45 days
//! of their creation; open tasks are partly done, have no duration and are due around now.

use crmsync_model::Value;
use rand::Rng;
use rust_decimal::Decimal;

use super::{
    Company, Lifecycle, Row, index_below, maybe, memo, money, option, person, person_email, phone, pick,
    reference, text,
};
use crate::generator::SampleGenerator;
use crate::rng::RecordRng;
use crate::{SampleEntity, options, words};

pub(super) fn lead_row(g: &SampleGenerator, rng: &mut RecordRng) -> Row {
    let life = Lifecycle::draw(g, rng);
    let (first, last) = person(rng);
    let company = Company::draw(rng);
    let product = *pick(rng, words::PRODUCTS);
    let subject = match rng.random_range(0..3) {
        0 => format!("Interested in {product}"),
        1 => format!("Quote request: {product}"),
        _ => format!("{product} for {}", company.name),
    };
    let revenue = money(rng, 5, 8);

    let mut row: Row = life.columns().into();
    row.extend([
        ("fullname", text(format!("{first} {last}"))),
        ("subject", text(subject)),
        ("firstname", text(first)),
        ("lastname", text(last)),
        ("companyname", text(company.name)),
        ("jobtitle", maybe(rng, 0.7, |r| text(*pick(r, words::JOB_TITLES)))),
        (
            "emailaddress1",
            maybe(rng, 0.9, |_| text(person_email(first, last, &company.domain))),
        ),
        ("telephone1", maybe(rng, 0.8, |r| text(phone(r, company.place)))),
        (
            "leadsourcecode",
            maybe(rng, 0.85, |r| option(r, options::LEAD_SOURCE)),
        ),
        ("leadqualitycode", option(rng, options::RATING)),
        ("industrycode", maybe(rng, 0.6, |r| option(r, options::INDUSTRY))),
        ("revenue", maybe(rng, 0.6, |_| Value::Decimal(revenue))),
        (
            "numberofemployees",
            maybe(rng, 0.6, |r| Value::Integer(r.random_range(1..=5000))),
        ),
        ("description", maybe(rng, 0.5, memo)),
    ]);
    row
}

pub(super) fn task_row(g: &SampleGenerator, rng: &mut RecordRng) -> Row {
    let life = Lifecycle::draw(g, rng);
    let regarding = match rng.random_range(0..100) {
        0..30 => Some(SampleEntity::Account),
        30..60 => Some(SampleEntity::Contact),
        60..85 => Some(SampleEntity::Opportunity),
        85..95 => Some(SampleEntity::Lead),
        _ => None,
    }
    .and_then(|entity| Some(entity).zip(index_below(rng, g.count(entity))));
    let regarding = match regarding {
        Some((entity, index)) => reference(g, entity, Some(index)),
        None => Value::Null,
    };
    // Completed tasks were due within 45 days of their creation, open ones are due around now;
    // all on the hour.
    let due = if life.inactive {
        super::seconds_after(life.created, rng.random_range(1..=45) * 86_400)
    } else {
        super::days_from_now(g, rng, life.created, -14..=45)
    };
    let on_the_hour = super::seconds_before(
        due,
        i64::from(chrono::Timelike::num_seconds_from_midnight(&due) % 3600),
    );
    let due = if on_the_hour < life.created {
        super::seconds_after(on_the_hour, 3600)
    } else {
        on_the_hour
    };
    let priority = match rng.random_range(0..10) {
        0..2 => 0,
        2..8 => 1,
        _ => 2,
    };
    let (duration, percent) = if life.inactive {
        (
            Value::Integer(rng.random_range(1..=16) * 15),
            Value::Decimal(Decimal::ONE_HUNDRED),
        )
    } else {
        let percent = *pick(rng, &[0, 0, 0, 2500, 3333, 5000, 6667, 7500]);
        (Value::Null, Value::Decimal(Decimal::new(percent, 2)))
    };

    let mut row: Row = life.columns().into();
    row.extend([
        ("subject", text(*pick(rng, words::TASK_SUBJECTS))),
        ("description", maybe(rng, 0.4, memo)),
        ("scheduledend", Value::DateTime(due)),
        ("prioritycode", Value::OptionSet(priority)),
        ("regardingobjectid", regarding),
        ("actualdurationminutes", duration),
        ("percentcomplete", percent),
    ]);
    row
}
