//! `opportunity` rows: a deal for a quantity of a product.
//!
//! Links: about 95% name a random account (`parentaccountid`); of those, 70% also name the
//! account's primary contact (contact `2 × account`). Opportunities without an account name a
//! random contact half of the time. Inactive opportunities are closed: stage "Close" with a
//! probability of 0 (lost) or 100 (won) and a close date in the past; open ones are in an
//! earlier stage with a probability that fits it and expected to close around now.

use crmsync_model::Value;
use rand::Rng;

use super::{Company, Lifecycle, Row, index_below, maybe, memo, money, option, pick, reference, text};
use crate::generator::SampleGenerator;
use crate::rng::RecordRng;
use crate::{SampleEntity, options, words};

pub(super) fn row(g: &SampleGenerator, rng: &mut RecordRng) -> Row {
    let life = Lifecycle::draw(g, rng);
    let account = if rng.random_bool(0.95) {
        index_below(rng, g.count(SampleEntity::Account))
    } else {
        None
    };
    let contact = match account {
        Some(a) if rng.random_bool(0.7) => Some(2 * a).filter(|c| *c < g.count(SampleEntity::Contact)),
        Some(_) => None,
        None if rng.random_bool(0.5) => index_below(rng, g.count(SampleEntity::Contact)),
        None => None,
    };
    let quantity = rng.random_range(1..=50) * 10;
    let product = *pick(rng, words::PRODUCTS);
    let name = match account {
        Some(a) => format!("{quantity} {product} for {}", Company::of_account(g, a).name),
        None => format!("{quantity} {product}"),
    };
    // SALES_STAGE lists Qualify, Develop, Propose, Close: closed deals are in the last stage.
    let (stage_index, probability) = if life.inactive {
        (3, if rng.random_bool(0.5) { 100 } else { 0 })
    } else {
        let stage_index = rng.random_range(0..3);
        let probability = match stage_index {
            0 => rng.random_range(10..=30),
            1 => rng.random_range(30..=60),
            _ => rng.random_range(50..=90),
        };
        (stage_index, probability)
    };
    let (stage, stage_label) = options::SALES_STAGE[stage_index];
    // Open deals are expected to close around now; closed ones closed after their creation.
    let close = if life.inactive {
        super::seconds_after(life.created, rng.random_range(14..=270) * 86_400).min(g.now())
    } else {
        super::days_from_now(g, rng, life.created, -30..=180)
    };

    let mut row: Row = life.columns().into();
    row.extend([
        ("name", text(name)),
        ("parentaccountid", reference(g, SampleEntity::Account, account)),
        ("parentcontactid", reference(g, SampleEntity::Contact, contact)),
        ("estimatedvalue", Value::Decimal(money(rng, 3, 6))),
        ("closeprobability", Value::Integer(probability)),
        ("estimatedclosedate", Value::DateTime(super::midnight(close))),
        ("stepname", text(format!("{}-{stage_label}", stage_index + 1))),
        ("salesstagecode", Value::OptionSet(stage)),
        ("opportunityratingcode", option(rng, options::RATING)),
        (
            "purchasetimeframe",
            maybe(rng, 0.7, |r| option(r, options::PURCHASE_TIMEFRAME)),
        ),
        ("description", maybe(rng, 0.4, memo)),
    ]);
    row
}
