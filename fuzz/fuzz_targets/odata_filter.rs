//! OData `$filter` parser (on `account`): arbitrary text must parse or fail with a
//! `QueryError`, never panic. When it parses:
//! - the filter lowers and evaluates against a full and an empty row without panicking;
//! - written as FetchXML, the query either is refused cleanly (`not today`, empty lists) or
//!   parses back to a filter with the same three-valued result on both rows.

#![no_main]

use std::sync::LazyLock;

use crmsync_fuzz::{EMPTY_ROW, FULL_ROW, METADATA, account, evaluate};
use crmsync_query::{ODataParams, Row, parse_fetchxml, parse_odata, to_fetchxml};
use libfuzzer_sys::fuzz_target;

static ACCOUNT: LazyLock<crmsync_model::EntityMetadata> = LazyLock::new(account);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params = ODataParams {
        filter: Some(text.to_owned()),
        ..Default::default()
    };
    let Ok(query) = parse_odata(&ACCOUNT, &params, &*METADATA) else {
        return;
    };
    let Some(filter) = &query.filter else {
        return;
    };
    let rows: [&dyn Row; 2] = [&*FULL_ROW, &*EMPTY_ROW];
    let results = rows.map(|row| evaluate(filter, row));
    let Ok(xml) = to_fetchxml(&query) else {
        return;
    };
    let back = parse_fetchxml(&xml, &*METADATA).unwrap_or_else(|e| {
        panic!("FetchXML written from $filter does not parse: {e}\n$filter: {text}\nwritten: {xml}")
    });
    let back_filter = back.filter.as_ref().expect("a written filter reads back");
    let back_results = rows.map(|row| evaluate(back_filter, row));
    assert_eq!(
        results, back_results,
        "meaning changed in FetchXML\n$filter: {text}\nwritten: {xml}"
    );
});
