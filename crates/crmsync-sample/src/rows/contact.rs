//! `contact` rows: people, most of them working for an account.
//!
//! Links (`parentcustomerid`): contact `2 × a` belongs to account `a` and is its primary
//! contact; of the other contacts about 95% belong to a random account, 2% to an earlier
//! contact (a Dataverse customer lookup may name a contact) and 3% to nobody. A contact of an
//! account gets an address at the account's domain and a phone number in its country.

use crmsync_model::Value;
use rand::Rng;

use super::{
    Company, Lifecycle, Row, index_below, maybe, memo, person, person_email, phone, pick, reference, text,
};
use crate::generator::SampleGenerator;
use crate::rng::RecordRng;
use crate::{SampleEntity, options, words};

/// Whom a contact works for.
enum Customer {
    Account(u64),
    Contact(u64),
    Nobody,
}

fn customer(g: &SampleGenerator, index: u64, rng: &mut RecordRng) -> Customer {
    let accounts = g.count(SampleEntity::Account);
    if index.is_multiple_of(2) && index / 2 < accounts {
        return Customer::Account(index / 2);
    }
    let roll = rng.random_range(0..100);
    match (roll, index_below(rng, accounts), index_below(rng, index)) {
        (0..3, _, _) => Customer::Nobody,
        (3..5, _, Some(earlier)) => Customer::Contact(earlier),
        (_, Some(account), _) => Customer::Account(account),
        _ => Customer::Nobody,
    }
}

pub(super) fn row(g: &SampleGenerator, index: u64, rng: &mut RecordRng) -> Row {
    let life = Lifecycle::draw(g, rng);
    let (first, last) = person(rng);
    let customer = customer(g, index, rng);
    let (domain, place) = match &customer {
        Customer::Account(a) => {
            let company = Company::of_account(g, *a);
            (company.domain, company.place)
        }
        Customer::Contact(_) | Customer::Nobody => (
            (*pick(rng, words::FREE_MAIL_DOMAINS)).to_owned(),
            pick(rng, words::PLACES),
        ),
    };
    let parent = match customer {
        Customer::Account(a) => reference(g, SampleEntity::Account, Some(a)),
        Customer::Contact(c) => reference(g, SampleEntity::Contact, Some(c)),
        Customer::Nobody => Value::Null,
    };
    // Born 1955..=2004, at midnight UTC (Dataverse stores birthdays as dates).
    let born = super::seconds_after(born_from(), rng.random_range(0..50 * 365) * 86_400);
    // Most contacts keep the default method, "Any".
    let method = if rng.random_bool(0.6) {
        Value::OptionSet(1)
    } else {
        super::option(rng, options::CONTACT_METHOD)
    };

    let mut row: Row = life.columns().into();
    row.extend([
        ("fullname", text(format!("{first} {last}"))),
        ("firstname", text(first)),
        ("lastname", text(last)),
        (
            "emailaddress1",
            maybe(rng, 0.95, |_| text(person_email(first, last, &domain))),
        ),
        ("telephone1", maybe(rng, 0.9, |r| text(phone(r, place)))),
        (
            "jobtitle",
            maybe(rng, 0.85, |r| text(*pick(r, words::JOB_TITLES))),
        ),
        ("address1_city", text(place.city)),
        (
            "birthdate",
            maybe(rng, 0.4, |_| Value::DateTime(super::midnight(born))),
        ),
        ("parentcustomerid", parent),
        ("preferredcontactmethodcode", method),
        ("donotemail", Value::Boolean(rng.random_bool(0.08))),
        ("description", maybe(rng, 0.3, memo)),
    ]);
    row
}

fn born_from() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(-473_385_600, 0).expect("1955-01-01T00:00:00Z is a valid timestamp")
}
