//! FetchXML documents: fetch attributes, columns, orders, nested filters, link-entities and
//! aliases, and the refusal of malformed, hostile or invalid documents.

use crate::common;

use common::metadata;
use crmsync_model::Value;
use crmsync_query::fetchxml::{MAX_DEPTH, MAX_INPUT_BYTES};
use crmsync_query::{Columns, Filter, LinkType, Operator, QueryError, parse_fetchxml};

fn parse(xml: &str) -> Result<crmsync_query::Query, QueryError> {
    parse_fetchxml(xml, &metadata())
}

#[test]
fn fetch_attributes_set_paging_and_flags() {
    let q = parse(
        r#"<fetch version="1.0" mapping="logical" count="50" page="3" paging-cookie="&lt;cookie page=&quot;2&quot;/&gt;"
                  returntotalrecordcount="true" distinct="false" no-lock="true">
             <entity name="account"><attribute name="name"/><attribute name="name"/><attribute name="revenue"/>
               <order attribute="name"/><order attribute="createdon" descending="true"/></entity></fetch>"#,
    )
    .unwrap();
    assert_eq!((q.count, q.page, q.top), (Some(50), Some(3), None));
    assert_eq!(q.paging_cookie.as_deref(), Some(r#"<cookie page="2"/>"#));
    assert!(q.return_total_count && !q.distinct);
    let cols: Vec<_> = match &q.columns {
        Columns::List(l) => l.iter().map(|a| a.as_str()).collect(),
        Columns::All => panic!("expected a list"),
    };
    assert_eq!(cols, ["name", "revenue"]);
    assert_eq!(q.order.len(), 2);
    assert!(!q.order[0].descending && q.order[1].descending);
    assert!(q.filter.is_none());
}

#[test]
fn top_with_paging_and_out_of_range_numbers_are_rejected() {
    for bad in [
        r#"<fetch top="10" page="2"><entity name="account"/></fetch>"#,
        r#"<fetch top="0"><entity name="account"/></fetch>"#,
        r#"<fetch count="5001"><entity name="account"/></fetch>"#,
        r#"<fetch count="ten"><entity name="account"/></fetch>"#,
        r#"<fetch distinct="maybe"><entity name="account"/></fetch>"#,
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse(r#"<fetch top="5000"><entity name="account"/></fetch>"#)
            .unwrap()
            .top,
        Some(5000)
    );
}

#[test]
fn nested_filters_keep_their_and_or_structure() {
    let q = parse(
        r#"<fetch><entity name="account"><all-attributes/>
             <filter type="and">
               <condition attribute="statecode" operator="eq" value="0"/>
               <filter type="or">
                 <condition attribute="name" operator="like" value="A%"/>
                 <condition attribute="revenue" operator="gt" value="1000"/>
                 <filter/>
               </filter>
             </filter></entity></fetch>"#,
    )
    .unwrap();
    assert_eq!(q.columns, Columns::All);
    let Some(Filter::And(parts)) = &q.filter else {
        panic!("{:?}", q.filter)
    };
    assert!(matches!(&parts[0], Filter::Condition(c) if c.operator == Operator::Eq(Value::OptionSet(0))));
    let Filter::Or(inner) = &parts[1] else {
        panic!("{:?}", parts[1])
    };
    assert_eq!(inner.len(), 2, "the empty filter is dropped");
}

#[test]
fn link_entities_resolve_aliases_declared_after_the_filter() {
    let q = parse(
        r#"<fetch><entity name="account">
             <filter><condition entityname="pc" attribute="emailaddress1" operator="not-null"/></filter>
             <link-entity name="contact" from="contactid" to="primarycontactid" alias="pc" link-type="outer">
               <attribute name="fullname"/>
               <order attribute="fullname" descending="true"/>
               <filter type="or"><condition attribute="birthdate" operator="today"/></filter>
               <link-entity name="account" from="accountid" to="parentcustomerid">
                 <attribute name="name"/>
               </link-entity>
             </link-entity>
             <order attribute="name"/>
           </entity></fetch>"#,
    )
    .unwrap();
    let link = &q.links[0];
    assert_eq!((link.alias.as_str(), link.link_type), ("pc", LinkType::Outer));
    assert_eq!(
        (link.from.as_str(), link.to.as_str()),
        ("contactid", "primarycontactid")
    );
    assert_eq!(
        link.links[0].alias, "account",
        "a missing alias defaults to the entity name"
    );
    assert_eq!(link.links[0].link_type, LinkType::Inner);
    assert!(link.filter.is_some());
    assert_eq!(q.order[0].alias, None);
    assert_eq!(q.order[1].alias.as_deref(), Some("pc"));
    assert!(q.has_relative_date_conditions());
    let Some(f) = &q.filter else { panic!() };
    assert_eq!(f.referenced_aliases().into_iter().collect::<Vec<_>>(), ["pc"]);
    let entities: Vec<_> = q.referenced_entities().into_iter().map(|e| e.as_str()).collect();
    assert_eq!(entities, ["account", "contact"]);
}

#[test]
fn link_entity_errors_name_the_problem() {
    let cases = [
        (r#"<link-entity name="nothing" from="a" to="b"/>"#, "nothing"),
        (
            r#"<link-entity name="contact" from="nope" to="primarycontactid"/>"#,
            "nope",
        ),
        (
            r#"<link-entity name="contact" from="contactid" to="nope"/>"#,
            "nope",
        ),
        (
            r#"<link-entity name="contact" from="contactid" to="primarycontactid" link-type="any"/>"#,
            "any",
        ),
        (r#"<link-entity name="contact" to="primarycontactid"/>"#, "from"),
        (
            r#"<link-entity name="contact" from="contactid" to="primarycontactid" alias="x"/>
               <link-entity name="contact" from="contactid" to="primarycontactid" alias="x"/>"#,
            "x",
        ),
    ];
    for (link, named) in cases {
        let xml = format!(r#"<fetch><entity name="account">{link}</entity></fetch>"#);
        let err = parse(&xml).unwrap_err().to_string();
        assert!(err.contains(named), "{err}");
    }
    let err = parse(
        r#"<fetch><entity name="account"><filter><condition entityname="zz" attribute="name" operator="null"/></filter></entity></fetch>"#,
    )
    .unwrap_err();
    assert_eq!(err, QueryError::UnknownAlias("zz".into()));
}

#[test]
fn unknown_entity_and_attribute_errors_name_them() {
    let err = parse(r#"<fetch><entity name="invoice"/></fetch>"#).unwrap_err();
    assert_eq!(err, QueryError::UnknownEntity("invoice".into()));
    for xml in [
        r#"<fetch><entity name="account"><attribute name="telephone9"/></entity></fetch>"#,
        r#"<fetch><entity name="account"><order attribute="telephone9"/></entity></fetch>"#,
        r#"<fetch><entity name="account"><filter><condition attribute="telephone9" operator="null"/></filter></entity></fetch>"#,
    ] {
        let err = parse(xml).unwrap_err();
        assert_eq!(
            err,
            QueryError::UnknownAttribute {
                entity: "account".into(),
                attribute: "telephone9".into()
            }
        );
        assert!(err.to_string().contains("'telephone9'"));
    }
}

#[test]
fn malformed_documents_are_rejected_with_a_reason() {
    let cases = [
        "",
        "garbage",
        "<fetch><entity name=\"account\">",
        "<fetch><entity name=\"account\"></fetch>",
        "<fetch><entity name=\"account\"/></fetch><fetch/>",
        "<fetch><entity name=\"account\"/></fetch>trailing",
        "<fetch><entity name=\"account\" name=\"x\"/></fetch>",
        "<fetch><entity name=\"acc&bogus;\"/></fetch>",
        "<fetch><entity name=\"account\"><filter><condition attribute=\"name\" operator=\"eq\"><value>&bogus;</value></condition></filter></entity></fetch>",
        "<fetch><entity name=\"account\"><filter><condition attribute=\"name\" operator=\"eq\" value=\"x\"/></entity></fetch>",
    ];
    for xml in cases {
        let err = parse(xml).unwrap_err();
        assert!(matches!(err, QueryError::MalformedXml { .. }), "{xml}: {err:?}");
        assert!(err.to_string().contains("not well-formed"));
    }
}

#[test]
fn unexpected_elements_and_missing_pieces_are_named() {
    let cases = [
        (r#"<query/>"#, "query"),
        (
            r#"<fetch><entity name="account"><script/></entity></fetch>"#,
            "script",
        ),
        (
            r#"<fetch><entity name="account"/><entity name="contact"/></fetch>"#,
            "entity",
        ),
        (r#"<fetch/>"#, "entity"),
        (r#"<fetch><entity/></fetch>"#, "name"),
        (
            r#"<fetch><entity name="account"><filter type="xor"/></entity></fetch>"#,
            "xor",
        ),
        (
            r#"<fetch><entity name="account"><filter><condition operator="null"/></filter></entity></fetch>"#,
            "attribute",
        ),
        (
            r#"<fetch><entity name="account"><filter><condition attribute="name"/></filter></entity></fetch>"#,
            "operator",
        ),
    ];
    for (xml, named) in cases {
        let err = parse(xml).unwrap_err().to_string();
        assert!(err.contains(named), "{xml}: {err}");
    }
}

#[test]
fn aggregates_and_column_comparisons_are_reported_as_unsupported() {
    for xml in [
        r#"<fetch aggregate="true"><entity name="account"/></fetch>"#,
        r#"<fetch><entity name="account"><attribute name="revenue" aggregate="sum" alias="total"/></entity></fetch>"#,
        r#"<fetch><entity name="account"><filter><condition attribute="name" operator="eq" valueof="description"/></filter></entity></fetch>"#,
    ] {
        assert!(matches!(parse(xml), Err(QueryError::Unsupported(_))), "{xml}");
    }
}

#[test]
fn doctype_is_refused_so_entities_are_never_expanded() {
    let xml = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
        <fetch><entity name="account"><filter><condition attribute="name" operator="eq" value="&lol2;"/></filter></entity></fetch>"#;
    assert_eq!(parse(xml).unwrap_err(), QueryError::DoctypeNotAllowed);
    let external = r#"<!DOCTYPE fetch SYSTEM "file:///etc/passwd"><fetch/>"#;
    assert_eq!(parse(external).unwrap_err(), QueryError::DoctypeNotAllowed);
}

#[test]
fn documents_nested_too_deep_are_refused() {
    let deep = format!(
        r#"<fetch><entity name="account">{}{}</entity></fetch>"#,
        "<filter>".repeat(MAX_DEPTH),
        "</filter>".repeat(MAX_DEPTH)
    );
    assert_eq!(parse(&deep).unwrap_err(), QueryError::TooDeep { max: MAX_DEPTH });
    let fine = format!(
        r#"<fetch><entity name="account">{}<condition attribute="name" operator="null"/>{}</entity></fetch>"#,
        "<filter>".repeat(10),
        "</filter>".repeat(10)
    );
    assert!(parse(&fine).is_ok());
}

#[test]
fn documents_over_the_size_limit_are_refused_before_parsing() {
    let huge = format!("<fetch>{}</fetch>", " ".repeat(MAX_INPUT_BYTES));
    assert!(matches!(parse(&huge), Err(QueryError::TooLarge { max, .. }) if max == MAX_INPUT_BYTES));
}

#[test]
fn many_in_values_are_accepted() {
    let values: String = (0..2000)
        .map(|i| format!("<value>{{00000000-0000-0000-0000-{i:012}}}</value>"))
        .collect();
    let xml = format!(
        r#"<fetch><entity name="account"><filter><condition attribute="accountid" operator="in">{values}</condition></filter></entity></fetch>"#
    );
    let q = parse(&xml).unwrap();
    let Some(Filter::And(parts)) = q.filter else {
        panic!()
    };
    let Filter::Condition(c) = &parts[0] else { panic!() };
    assert!(matches!(&c.operator, Operator::In(v) if v.len() == 2000));
}

#[test]
fn escaped_text_and_character_references_are_decoded() {
    let q = parse(
        r#"<fetch><entity name="account"><filter><condition attribute="name" operator="in"><value>a &amp; b &#60;&#x3E;</value><value><![CDATA[<raw>]]></value></condition></filter></entity></fetch>"#,
    )
    .unwrap();
    let Some(Filter::And(parts)) = q.filter else {
        panic!()
    };
    let Filter::Condition(c) = &parts[0] else { panic!() };
    assert_eq!(
        c.operator,
        Operator::In(vec![
            Value::String("a & b <>".into()),
            Value::String("<raw>".into())
        ])
    );
}
