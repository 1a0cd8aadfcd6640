//! FetchXML parser: arbitrary text must parse or fail with a `QueryError`, never panic. When
//! it parses:
//! - writing the query back with `to_fetchxml` either fails cleanly (a query FetchXML cannot
//!   state) or yields FetchXML that parses again to an equal query (round trip);
//! - every filter in it (root and link-entities) lowers and evaluates against a full and an
//!   empty row without panicking.

#![no_main]

use crmsync_fuzz::{EMPTY_ROW, FULL_ROW, METADATA, aliases, evaluate, filters};
use crmsync_query::{JoinedRow, Row, parse_fetchxml, to_fetchxml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = parse_fetchxml(text, &*METADATA) else {
        return;
    };
    if let Ok(xml) = to_fetchxml(&query) {
        match parse_fetchxml(&xml, &*METADATA) {
            Ok(back) => assert_eq!(
                back, query,
                "round trip changed the query\ninput: {text}\nwritten: {xml}"
            ),
            Err(e) => panic!("written FetchXML does not parse: {e}\ninput: {text}\nwritten: {xml}"),
        }
    }
    let full = &*FULL_ROW as &dyn Row;
    let joined = JoinedRow {
        main: full,
        linked: aliases(&query).into_iter().map(|a| (a, full)).collect(),
    };
    for filter in filters(&query) {
        evaluate(filter, &joined);
        evaluate(filter, &*EMPTY_ROW);
    }
});
