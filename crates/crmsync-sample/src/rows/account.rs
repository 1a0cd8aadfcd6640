//! `account` rows: a company with its address, industry, revenue and size.
//!
//! Links: about 15% of accounts have a parent account with a lower index (so a parent is always
//! written before its children); about 90% name a primary contact, which is contact `2 × index`,
//! the contact whose `parentcustomerid` is this account (see `contact.rs`). That reference
//! points forward, to an entity written after accounts.

use crmsync_model::Value;
use rand::Rng;

use super::{Company, Lifecycle, Row, index_below, maybe, memo, money, option, phone, reference, text};
use crate::generator::SampleGenerator;
use crate::rng::RecordRng;
use crate::{SampleEntity, options};

pub(super) fn row(g: &SampleGenerator, index: u64, rng: &mut RecordRng) -> Row {
    let life = Lifecycle::draw(g, rng);
    let company = Company::of_account(g, index);
    let revenue = money(rng, 5, 8);
    // Revenue per employee between 80k and 300k, so the two figures agree with each other.
    let employees = (revenue / rust_decimal::Decimal::from(rng.random_range(80_000..300_000)))
        .trunc()
        .try_into()
        .map_or(1, |n: i32| n.max(1));
    let letters: String = (0..2)
        .map(|_| char::from(rng.random_range(b'A'..=b'Z')))
        .collect();
    let mailbox = *super::pick(rng, &["info", "sales", "contact", "office"]);
    let parent = if index > 0 && rng.random_bool(0.15) {
        index_below(rng, index)
    } else {
        None
    };
    let primary_contact =
        (rng.random_bool(0.9) && 2 * index < g.count(SampleEntity::Contact)).then_some(2 * index);
    let last_campaign = if rng.random_bool(0.3) {
        let age = (g.now() - life.created).num_seconds().max(0);
        Value::DateTime(super::seconds_after(life.created, rng.random_range(0..=age)))
    } else {
        Value::Null
    };

    let mut row: Row = life.columns().into();
    row.extend([
        ("name", text(company.name)),
        ("accountnumber", text(format!("{letters}{index:07}"))),
        ("telephone1", text(phone(rng, company.place))),
        ("emailaddress1", text(format!("{mailbox}@{}", company.domain))),
        ("websiteurl", text(format!("https://www.{}", company.domain))),
        ("address1_city", text(company.place.city)),
        ("address1_country", text(company.place.country)),
        ("industrycode", maybe(rng, 0.9, |r| option(r, options::INDUSTRY))),
        ("revenue", maybe(rng, 0.8, |_| Value::Decimal(revenue))),
        (
            "numberofemployees",
            maybe(rng, 0.8, |_| Value::Integer(employees)),
        ),
        ("description", maybe(rng, 0.5, memo)),
        ("creditonhold", Value::Boolean(rng.random_bool(0.05))),
        ("lastusedincampaign", last_campaign),
        ("parentaccountid", reference(g, SampleEntity::Account, parent)),
        (
            "primarycontactid",
            reference(g, SampleEntity::Contact, primary_contact),
        ),
    ]);
    row
}
