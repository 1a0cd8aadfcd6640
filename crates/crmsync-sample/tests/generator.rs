//! The sample generator seen from its callers: determinism, counts, batches that fit the
//! metadata, lookups that resolve, and the documented shares of the data.

use std::collections::{HashMap, HashSet};

use crmsync_model::{EntityMetadata, RecordBatch, RecordId, Value};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};

fn all_batches(g: &SampleGenerator, batch_size: usize) -> Vec<(SampleEntity, RecordBatch)> {
    SampleEntity::ALL
        .into_iter()
        .flat_map(|e| g.batches(e, batch_size).map(move |b| (e, b)))
        .collect()
}

fn metadata(entity: SampleEntity) -> EntityMetadata {
    crm_entities()
        .into_iter()
        .find(|m| m.logical_name.as_str() == entity.logical_name())
        .expect("every sample entity has metadata")
}

fn column(batch: &RecordBatch, name: &str) -> usize {
    batch
        .columns
        .iter()
        .position(|c| c.as_str() == name)
        .unwrap_or_else(|| panic!("batch has column {name}"))
}

#[test]
fn same_seed_gives_identical_records_and_ids() {
    let a = all_batches(&SampleGenerator::new(42, 200), 64);
    let b = all_batches(&SampleGenerator::new(42, 200), 64);
    assert_eq!(a, b);
}

#[test]
fn another_seed_gives_other_records_and_ids() {
    let a = SampleGenerator::new(1, 50);
    let b = SampleGenerator::new(2, 50);
    for entity in SampleEntity::ALL {
        let rows_a = a.batches(entity, 1000).next().expect("one batch");
        let rows_b = b.batches(entity, 1000).next().expect("one batch");
        let ids_a: HashSet<RecordId> = rows_a.rows.iter().map(|(id, _)| *id).collect();
        assert!(rows_b.rows.iter().all(|(id, _)| !ids_a.contains(id)), "{entity}");
        let same_values = rows_a
            .rows
            .iter()
            .zip(&rows_b.rows)
            .filter(|(x, y)| x.1 == y.1)
            .count();
        assert_eq!(same_values, 0, "{entity}");
    }
}

#[test]
fn counts_scale_with_the_number_of_accounts() {
    let g = SampleGenerator::new(7, 10_000);
    let counts = g.counts();
    assert_eq!(counts.get(SampleEntity::Account), 10_000);
    assert_eq!(counts.get(SampleEntity::Contact), 20_000);
    assert_eq!(counts.get(SampleEntity::Opportunity), 10_000);
    assert_eq!(counts.get(SampleEntity::Lead), 5_000);
    assert_eq!(counts.get(SampleEntity::Task), 20_000);
    assert_eq!(counts.total(), 65_000);
    assert_eq!(
        counts.to_string(),
        "10000 accounts, 20000 contacts, 10000 opportunities, 5000 leads, 20000 tasks"
    );
    assert_eq!(
        SampleGenerator::new(7, 1).counts().to_string(),
        "1 account, 2 contacts, 1 opportunity, 0 leads, 2 tasks"
    );
    assert_eq!(SampleGenerator::new(7, 0).counts().total(), 0);
    assert_eq!(
        SampleGenerator::new(7, 0)
            .batches(SampleEntity::Account, 10)
            .count(),
        0
    );
}

#[test]
fn batches_hold_every_record_once_in_index_order() {
    let g = SampleGenerator::new(3, 101);
    for entity in SampleEntity::ALL {
        let batches: Vec<RecordBatch> = g.batches(entity, 10).collect();
        assert_eq!(batches.len() as u64, g.count(entity).div_ceil(10), "{entity}");
        assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 10));
        let ids: Vec<RecordId> = batches
            .iter()
            .flat_map(|b| b.rows.iter().map(|(id, _)| *id))
            .collect();
        let expected: Vec<RecordId> = (0..g.count(entity)).map(|i| g.record_id(entity, i)).collect();
        assert_eq!(ids, expected, "{entity}");
        assert!(
            batches.iter().all(|b| b.columns == batches[0].columns),
            "{entity}"
        );
    }
    // A batch size of zero would never make progress; it is read as one.
    assert_eq!(g.batches(SampleEntity::Account, 0).count(), 101);
}

#[test]
fn every_generated_value_coerces_to_itself_and_every_column_exists() {
    let g = SampleGenerator::new(11, 1_500);
    for entity in SampleEntity::ALL {
        let meta = metadata(entity);
        let mut rows = 0;
        for batch in g.batches(entity, 500) {
            let types: Vec<_> = batch
                .columns
                .iter()
                .map(|c| {
                    let attribute = meta
                        .require_attribute(c.as_str())
                        .expect("column exists in metadata");
                    assert_ne!(c, &meta.primary_id_attribute, "the id travels beside the columns");
                    assert_ne!(c.as_str(), "versionnumber", "the store assigns versions");
                    &attribute.attribute_type
                })
                .collect();
            for (id, values) in &batch.rows {
                assert_eq!(values.len(), types.len());
                for ((value, ty), c) in values.iter().zip(&types).zip(&batch.columns) {
                    let coerced = value.clone().coerce(ty);
                    assert_eq!(coerced.as_ref(), Ok(value), "{entity}.{c} of {id}");
                }
                rows += 1;
            }
        }
        assert_eq!(rows, g.count(entity));
        assert!(rows >= 750, "a few thousand rows of every entity but leads");
    }
}

#[test]
fn every_lookup_names_a_record_the_generator_produces_for_its_target() {
    let g = SampleGenerator::new(5, 400);
    let batches = all_batches(&g, 1000);
    let mut ids: HashMap<&str, HashSet<RecordId>> = HashMap::new();
    for (entity, batch) in &batches {
        ids.entry(entity.logical_name())
            .or_default()
            .extend(batch.rows.iter().map(|(id, _)| *id));
    }
    let mut set = 0;
    let mut null = 0;
    for (entity, batch) in &batches {
        for (_, values) in &batch.rows {
            for value in values {
                match value {
                    Value::Lookup(r) => {
                        assert!(
                            ids[r.entity.as_str()].contains(&r.id),
                            "{entity} -> {}({})",
                            r.entity,
                            r.id
                        );
                        set += 1;
                    }
                    Value::Null => null += 1,
                    _ => {}
                }
            }
        }
    }
    assert!(set > 2_000, "most lookups are set: {set}");
    assert!(null > 0);
}

#[test]
fn lookups_spread_over_parents_and_leave_a_few_empty() {
    let g = SampleGenerator::new(9, 1_000);
    let batch = g.batches(SampleEntity::Contact, 2_000).next().expect("one batch");
    let parent = column(&batch, "parentcustomerid");
    let accounts: HashSet<_> = batch
        .rows
        .iter()
        .filter_map(|(_, v)| match &v[parent] {
            Value::Lookup(r) if r.entity.as_str() == "account" => Some(r.id),
            _ => None,
        })
        .collect();
    let nulls = batch.rows.iter().filter(|(_, v)| v[parent].is_null()).count();
    assert!(
        accounts.len() > 900,
        "contacts belong to many accounts: {}",
        accounts.len()
    );
    assert!(
        (10..100).contains(&nulls),
        "a few contacts have no company: {nulls}"
    );
}

#[test]
fn an_accounts_primary_contact_works_for_that_account() {
    let g = SampleGenerator::new(13, 300);
    let accounts = g.batches(SampleEntity::Account, 300).next().expect("one batch");
    let contacts = g.batches(SampleEntity::Contact, 600).next().expect("one batch");
    let primary = column(&accounts, "primarycontactid");
    let parent = column(&contacts, "parentcustomerid");
    let by_id: HashMap<RecordId, &Vec<Value>> = contacts.rows.iter().map(|(id, v)| (*id, v)).collect();
    let mut linked = 0;
    for (account_id, values) in &accounts.rows {
        if let Value::Lookup(contact) = &values[primary] {
            match &by_id[&contact.id][parent] {
                Value::Lookup(r) => assert_eq!(r.id, *account_id),
                other => panic!("primary contact without company: {other:?}"),
            }
            linked += 1;
        }
    }
    assert!(
        linked > 240,
        "about 90% of accounts have a primary contact: {linked}"
    );
}

#[test]
fn about_ten_percent_of_records_are_inactive_with_a_matching_status() {
    let g = SampleGenerator::new(17, 4_000);
    for entity in SampleEntity::ALL {
        let mut inactive = 0u64;
        for batch in g.batches(entity, 1_000) {
            let (state, status) = (column(&batch, "statecode"), column(&batch, "statuscode"));
            for (_, v) in &batch.rows {
                match (&v[state], &v[status]) {
                    (Value::OptionSet(0), Value::OptionSet(1)) => {}
                    (Value::OptionSet(1), Value::OptionSet(2)) => inactive += 1,
                    other => panic!("{entity}: inconsistent state/status {other:?}"),
                }
            }
        }
        let share = inactive as f64 / g.count(entity) as f64;
        assert!((0.08..0.12).contains(&share), "{entity}: {share}");
    }
}

#[test]
fn dates_are_whole_seconds_in_the_past_and_modifiedon_follows_createdon() {
    let g = SampleGenerator::new(19, 500);
    for entity in SampleEntity::ALL {
        for batch in g.batches(entity, 1_000) {
            let (created, modified) = (column(&batch, "createdon"), column(&batch, "modifiedon"));
            for (_, v) in &batch.rows {
                let (Value::DateTime(c), Value::DateTime(m)) = (&v[created], &v[modified]) else {
                    panic!("{entity}: createdon and modifiedon are set");
                };
                assert!(c <= m && *m <= g.now(), "{entity}: {c} {m}");
                assert!(g.now() - *c <= chrono::TimeDelta::days(5 * 366));
                for value in v {
                    if let Value::DateTime(d) = value {
                        assert_eq!(d.timestamp_subsec_nanos(), 0, "{entity}: {d}");
                    }
                }
            }
        }
    }
}

#[test]
fn due_and_close_dates_come_after_creation_and_open_work_is_due_around_now() {
    let g = SampleGenerator::new(41, 1_000);
    for (entity, date) in [
        (SampleEntity::Opportunity, "estimatedclosedate"),
        (SampleEntity::Task, "scheduledend"),
    ] {
        for batch in g.batches(entity, 2_000) {
            let (created, due, state) = (
                column(&batch, "createdon"),
                column(&batch, date),
                column(&batch, "statecode"),
            );
            for (_, v) in &batch.rows {
                let (Value::DateTime(c), Value::DateTime(d)) = (&v[created], &v[due]) else {
                    panic!("{entity}: createdon and {date} are set");
                };
                // Close dates are dates (midnight), so they may fall on the day of creation.
                assert!(
                    *d + chrono::TimeDelta::days(1) > *c,
                    "{entity}: {date} {d} before {c}"
                );
                if v[state] == Value::OptionSet(0) {
                    let distance = (*d - g.now()).num_days().abs();
                    assert!(distance <= 181 || d == c, "{entity}: open, {date} {d}");
                }
            }
        }
    }
}

#[test]
fn the_reference_time_moves_the_dates_and_nothing_else() {
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 123).expect("valid timestamp");
    let base = SampleGenerator::new(23, 20);
    let moved = SampleGenerator::new(23, 20).with_now(now);
    assert_eq!(moved.now().timestamp_subsec_nanos(), 0);
    let a = base.record(SampleEntity::Account, 3).expect("record 3 exists");
    let b = moved.record(SampleEntity::Account, 3).expect("record 3 exists");
    assert_eq!(a.id, b.id);
    assert_eq!(a.get("name"), b.get("name"));
    assert_ne!(a.get("createdon"), b.get("createdon"));
}

#[test]
fn a_single_record_matches_its_row_in_the_batches() {
    let g = SampleGenerator::new(29, 30);
    for entity in SampleEntity::ALL {
        let batch = g.batches(entity, 100).next().expect("one batch");
        let index = batch.len() - 1;
        let record = g.record(entity, index as u64).expect("record exists");
        let (id, values) = &batch.rows[index];
        assert_eq!(record.id, Some(*id));
        for (c, v) in batch.columns.iter().zip(values) {
            assert_eq!(record.get(c.as_str()), Some(v), "{entity}.{c}");
        }
        assert!(g.record(entity, g.count(entity)).is_none());
    }
}

#[test]
fn a_million_accounts_stream_one_batch_at_a_time() {
    let g = SampleGenerator::new(31, 1_000_000);
    let mut batches = g.batches(SampleEntity::Task, 5_000);
    assert_eq!(batches.len(), 400);
    let first = batches.next().expect("a first batch");
    assert_eq!(first.len(), 5_000);
    assert_eq!(batches.remaining_records(), 1_995_000);
    // The last records can be built without generating the ones before them.
    let last = g
        .record(SampleEntity::Contact, 1_999_999)
        .expect("the last contact exists");
    assert_eq!(last.id, Some(g.record_id(SampleEntity::Contact, 1_999_999)));
}

#[test]
fn generated_text_reads_like_crm_data() {
    let g = SampleGenerator::new(37, 50);
    let account = g.record(SampleEntity::Account, 0).expect("an account");
    let Some(Value::String(email)) = account.get("emailaddress1") else {
        panic!("accounts have an e-mail address");
    };
    let Some(Value::String(url)) = account.get("websiteurl") else {
        panic!("accounts have a website");
    };
    let domain = email
        .split_once('@')
        .map(|(_, d)| d)
        .expect("an address with a domain");
    assert_eq!(url, &format!("https://www.{domain}"));
    let contact = g.record(SampleEntity::Contact, 0).expect("a contact");
    let (Some(Value::String(first)), Some(Value::String(last)), Some(Value::String(full))) = (
        contact.get("firstname"),
        contact.get("lastname"),
        contact.get("fullname"),
    ) else {
        panic!("contacts have names");
    };
    assert_eq!(full, &format!("{first} {last}"));
    if let Some(Value::String(contact_email)) = contact.get("emailaddress1") {
        assert!(
            contact_email.ends_with(&format!("@{domain}")),
            "{contact_email} works at {domain}"
        );
    }
}
