//! Mapping tests on JSON shaped as Dataverse returns it (the crmsync server's own shapes are
//! covered by the integration tests against a real server).

use std::str::FromStr;

use crmsync_model::{EntityReference, Record, RecordId, Value};
use rust_decimal::Decimal;
use serde_json::json;

use super::*;
use crate::dataverse::decode;

/// One entry decoded as the only entry of a page.
fn decode_one(e: &EntityMetadata, entry: &Json) -> Result<decode::Page, SyncError> {
    decode::page(e, &serde_json::to_vec(&json!({ "value": [entry] })).unwrap())
}

fn record_from_json(e: &EntityMetadata, entry: &Json) -> Result<Record, SyncError> {
    let batch = decode_one(e, entry)?.records.remove(0);
    Ok(batch.into_records(&e.primary_id_attribute).remove(0))
}

#[derive(Debug, PartialEq)]
enum DeltaEntry {
    Upsert(Record),
    Delete(RecordId),
}

fn delta_entry(e: &EntityMetadata, entry: &Json) -> Result<DeltaEntry, SyncError> {
    let mut page = decode_one(e, entry)?;
    Ok(match page.deletes.pop() {
        Some(id) => DeltaEntry::Delete(id),
        None => DeltaEntry::Upsert(record_from_json(e, entry)?),
    })
}

fn label(text: &str) -> Json {
    json!({"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}], "UserLocalizedLabel": {"Label": text, "LanguageCode": 1033}})
}

fn system_attributes() -> Vec<Json> {
    vec![
        json!({"LogicalName": "accountid", "AttributeType": "Uniqueidentifier", "AttributeOf": null, "DisplayName": label("Account")}),
        json!({"LogicalName": "createdon", "AttributeType": "DateTime", "DisplayName": label("Created On")}),
        json!({"LogicalName": "modifiedon", "AttributeType": "DateTime", "DisplayName": {"LocalizedLabels": [], "UserLocalizedLabel": null}}),
        json!({"LogicalName": "versionnumber", "AttributeType": "BigInt"}),
        json!({"@odata.type": "#Microsoft.Dynamics.CRM.StateAttributeMetadata", "LogicalName": "statecode", "AttributeType": "State",
               "OptionSet": {"Options": [{"Value": 0, "Label": label("Active")}, {"Value": 1, "Label": label("Inactive")}]}}),
        json!({"LogicalName": "statuscode", "AttributeType": "Status",
               "OptionSet": {"Options": [{"Value": 1, "State": 0, "Label": label("Active")}, {"Value": 2, "State": 1, "Label": label("Inactive")}]}}),
        json!({"LogicalName": "name", "AttributeType": "String", "MaxLength": 160, "DisplayName": label("Account Name")}),
    ]
}

fn account_json(extra: Vec<Json>) -> Json {
    let mut attributes = system_attributes();
    attributes.extend(extra);
    json!({
        "LogicalName": "account", "EntitySetName": "accounts", "PrimaryIdAttribute": "accountid",
        "PrimaryNameAttribute": "name", "DisplayName": label("Account"), "MetadataId": "70816501-edb9-4740-a16c-6a5efbc05d84",
        "Attributes": attributes,
    })
}

#[test]
fn dataverse_attribute_types_map_or_are_skipped() {
    let json = account_json(vec![
        json!({"LogicalName": "ownerid", "AttributeType": "Owner", "Targets": ["systemuser", "team"]}),
        json!({"LogicalName": "parentcustomerid", "AttributeType": "Customer", "Targets": ["account", "contact"]}),
        json!({"LogicalName": "owneridname", "AttributeType": "String", "AttributeOf": "ownerid", "MaxLength": 100}),
        json!({"LogicalName": "owneridtype", "AttributeType": "EntityName"}),
        json!({"LogicalName": "entityimage", "AttributeType": "Virtual", "AttributeTypeName": {"Value": "ImageType"}}),
        json!({"LogicalName": "traversedpath", "AttributeType": "String", "MaxLength": 1250}),
        json!({"LogicalName": "iscustomizable", "AttributeType": "ManagedProperty"}),
        json!({"LogicalName": "requiredattendees", "AttributeType": "PartyList"}),
        json!({"LogicalName": "description", "AttributeType": "Memo", "MaxLength": 2000}),
        json!({"LogicalName": "numberofemployees", "AttributeType": "Integer", "MinValue": 0, "MaxValue": 1000000000}),
        json!({"LogicalName": "exchangerate", "AttributeType": "Decimal", "Precision": 10}),
        json!({"LogicalName": "revenue", "AttributeType": "Money", "Precision": 4}),
        json!({"LogicalName": "address1_latitude", "AttributeType": "Double"}),
        json!({"LogicalName": "creditonhold", "AttributeType": "Boolean"}),
        json!({"LogicalName": "processid", "AttributeType": "Uniqueidentifier"}),
        json!({"LogicalName": "industrycode", "AttributeType": "Picklist"}),
        json!({"LogicalName": "Bad__Name", "AttributeType": "String", "MaxLength": 10}),
    ]);
    assert!(lacks_option_sets(&json), "industrycode came without options");
    let extra = option_sets_from_json(&[json!({
        "LogicalName": "industrycode",
        "OptionSet": null,
        "GlobalOptionSet": {"Options": [{"Value": 1, "Label": label("Accounting")}, {"Value": 2, "Label": {"UserLocalizedLabel": null, "LocalizedLabels": []}}]}
    })]);
    let e = entity_from_json(&json, &extra).expect("account maps");
    let ty = |n: &str| e.attribute(n).map(|a| a.attribute_type.clone());
    let names = |t: &[&str]| {
        t.iter()
            .map(|s| EntityName::parse(s).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ty("ownerid"),
        Some(AttributeType::Lookup {
            targets: names(&["systemuser", "team"])
        })
    );
    assert_eq!(
        ty("parentcustomerid"),
        Some(AttributeType::Lookup {
            targets: names(&["account", "contact"])
        })
    );
    for skipped in [
        "owneridname",
        "owneridtype",
        "entityimage",
        "iscustomizable",
        "requiredattendees",
    ] {
        assert_eq!(ty(skipped), None, "{skipped}");
    }
    assert_eq!(
        ty("traversedpath"),
        Some(AttributeType::String { max_length: 1250 })
    );
    assert_eq!(
        ty("numberofemployees"),
        Some(AttributeType::Integer {
            min: 0,
            max: 1_000_000_000
        })
    );
    assert_eq!(ty("exchangerate"), Some(AttributeType::Decimal { precision: 10 }));
    assert_eq!(ty("revenue"), Some(AttributeType::Money { precision: 4 }));
    let industry = ty("industrycode").unwrap();
    let options = &industry.option_set().unwrap().options;
    assert_eq!(
        (options[0].label.as_str(), options[1].label.as_str()),
        ("Accounting", "2")
    );
    let status = ty("statuscode").unwrap();
    assert_eq!(status.option_set().unwrap().options[1].state, Some(1));
    assert_eq!(e.display_name, "Account");
    assert_eq!(e.attribute("modifiedon").unwrap().display_name, "");
}

#[test]
fn activities_map_with_their_activityid() {
    let mut task = account_json(vec![
        json!({"LogicalName": "subject", "AttributeType": "String", "MaxLength": 200}),
        json!({"LogicalName": "regardingobjectid", "AttributeType": "Lookup", "Targets": ["account", "contact"]}),
    ]);
    task["LogicalName"] = json!("task");
    task["EntitySetName"] = json!("tasks");
    task["PrimaryIdAttribute"] = json!("activityid");
    task["PrimaryNameAttribute"] = json!("subject");
    task["Attributes"][0]["LogicalName"] = json!("activityid");
    let e = entity_from_json(&task, &HashMap::new()).expect("task maps");
    assert_eq!(e.primary_id_attribute.as_str(), "activityid");
    assert_eq!(e.primary_name_attribute.as_str(), "subject");
    assert!(e.attribute("regardingobjectid").is_some());
}

#[test]
fn entities_crmsync_cannot_hold_are_skipped_whole() {
    let mut no_set = account_json(vec![]);
    no_set["EntitySetName"] = Json::Null;
    assert!(entity_from_json(&no_set, &HashMap::new()).is_none());
    // A primary id named after another entity.
    let mut foreign_id = account_json(vec![]);
    foreign_id["PrimaryIdAttribute"] = json!("contactid");
    foreign_id["Attributes"][0]["LogicalName"] = json!("contactid");
    assert!(entity_from_json(&foreign_id, &HashMap::new()).is_none());
    let mut no_state = account_json(vec![]);
    no_state["Attributes"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["LogicalName"] != "statecode");
    assert!(entity_from_json(&no_state, &HashMap::new()).is_none());
}

fn account() -> EntityMetadata {
    let json = account_json(vec![
        json!({"LogicalName": "parentaccountid", "AttributeType": "Lookup", "Targets": ["account"]}),
        json!({"LogicalName": "ownerid", "AttributeType": "Owner", "Targets": ["systemuser", "team"]}),
        json!({"LogicalName": "revenue", "AttributeType": "Money", "Precision": 4}),
        json!({"LogicalName": "exchangerate", "AttributeType": "Decimal", "Precision": 10}),
    ]);
    entity_from_json(&json, &HashMap::new()).unwrap()
}

#[test]
fn records_are_typed_by_metadata_and_annotations_ignored() {
    let e = account();
    let (id, parent, owner) = (
        RecordId::new_random(),
        RecordId::new_random(),
        RecordId::new_random(),
    );
    let body: Json = serde_json::from_str(&format!(
        r#"{{"@odata.etag":"W/\"4711\"","accountid":"{id}","name":"Fourth Coffee",
        "revenue":1234567.8901,"revenue_base":1234567.8901,"exchangerate":1.0000000001,
        "statecode":1,"statecode@OData.Community.Display.V1.FormattedValue":"Inactive",
        "createdon":"2024-02-29T10:11:12Z","versionnumber":4711,
        "_parentaccountid_value":"{parent}",
        "_ownerid_value":"{owner}","_ownerid_value@{LOOKUP_NAME}":"team",
        "_transactioncurrencyid_value":"{owner}","unknownthing":[1,2]}}"#
    ))
    .unwrap();
    let r = record_from_json(&e, &body).unwrap();
    assert_eq!(r.id, Some(id));
    assert_eq!(r.get("accountid"), Some(&Value::Guid(id)));
    assert_eq!(
        r.get("revenue"),
        Some(&Value::Decimal(Decimal::from_str("1234567.8901").unwrap()))
    );
    assert_eq!(
        r.get("exchangerate"),
        Some(&Value::Decimal(Decimal::from_str("1.0000000001").unwrap()))
    );
    assert_eq!(r.get("statecode"), Some(&Value::OptionSet(1)));
    assert_eq!(r.get("versionnumber"), Some(&Value::BigInt(4711)));
    let lookup = |entity: &str, id| {
        Some(Value::Lookup(EntityReference {
            entity: EntityName::parse(entity).unwrap(),
            id,
        }))
    };
    assert_eq!(
        r.get("parentaccountid").cloned(),
        lookup("account", parent),
        "single target without annotation"
    );
    assert_eq!(r.get("ownerid").cloned(), lookup("team", owner));
    assert_eq!(r.values.len(), 9, "{:?}", r.values.keys().collect::<Vec<_>>());

    let ambiguous = json!({"accountid": id.to_string(), "_ownerid_value": owner.to_string()});
    assert!(
        matches!(record_from_json(&e, &ambiguous), Err(SyncError::Protocol(m)) if m.contains("_ownerid_value"))
    );
    let wrong_target = json!({"accountid": id.to_string(), "_ownerid_value": owner.to_string(), format!("_ownerid_value@{LOOKUP_NAME}"): "account"});
    assert!(record_from_json(&e, &wrong_target).is_err());
    assert!(record_from_json(&e, &json!({"name": "no id"})).is_err());
    assert!(
        matches!(record_from_json(&e, &json!({"accountid": id.to_string(), "statecode": 7})), Err(SyncError::Protocol(m)) if m.contains("statecode"))
    );
    let nulls = json!({"accountid": id.to_string(), "_parentaccountid_value": null, "revenue": null});
    let r = record_from_json(&e, &nulls).unwrap();
    assert_eq!(
        (r.get("parentaccountid"), r.get("revenue")),
        (Some(&Value::Null), Some(&Value::Null))
    );
}

/// Money and decimals are read from their JSON text, digit for digit (a double would keep
/// about 16 significant digits).
#[test]
fn decimals_are_read_digit_for_digit() {
    let e = account();
    let id = RecordId::new_random();
    let read = |revenue: &str, rate: &str| {
        let body =
            format!(r#"{{"value":[{{"accountid":"{id}","revenue":{revenue},"exchangerate":{rate}}}]}}"#);
        let batch = decode::page(&e, body.as_bytes())
            .map(|mut page| page.records.remove(0))
            .map(|batch| batch.into_records(&e.primary_id_attribute).remove(0));
        batch.map(|r| (r.get("revenue").cloned(), r.get("exchangerate").cloned()))
    };
    let decimal = |text: &str| Some(Value::Decimal(Decimal::from_str(text).unwrap()));
    assert_eq!(
        read("922337203685477.5807", "-12345678901.0123456789").unwrap(),
        (
            decimal("922337203685477.5807"),
            decimal("-12345678901.0123456789")
        )
    );
    // Exponents, quoted text and nulls; rounded to the attribute's precision.
    assert_eq!(
        read("1.5E+3", "\"0.25\"").unwrap(),
        (decimal("1500"), decimal("0.25"))
    );
    assert_eq!(
        read("null", "1.00000000005").unwrap(),
        (Some(Value::Null), decimal("1.0000000001"))
    );
    assert!(matches!(read("true", "1"), Err(SyncError::Protocol(m)) if m.contains("true")));
    assert!(matches!(read("\"lots\"", "1"), Err(SyncError::Protocol(m)) if m.contains("revenue")));
}

#[test]
fn delta_entries_and_select_lists() {
    let e = account();
    let id = RecordId::new_random();
    let deleted = json!({"@odata.context": "https://x/api/data/v9.2/$metadata#accounts/$deletedEntity", "id": id.to_string(), "reason": "deleted"});
    assert_eq!(delta_entry(&e, &deleted).unwrap(), DeltaEntry::Delete(id));
    let upsert = json!({"accountid": id.to_string(), "name": "x"});
    assert!(matches!(delta_entry(&e, &upsert).unwrap(), DeltaEntry::Upsert(r) if r.id == Some(id)));
    let cols: Vec<AttributeName> = ["name", "parentaccountid", "revenue"]
        .iter()
        .map(|c| AttributeName::parse(c).unwrap())
        .collect();
    assert_eq!(
        select_list(&e, &cols).unwrap().as_deref(),
        Some("name,_parentaccountid_value,revenue")
    );
    assert_eq!(select_list(&e, &[]).unwrap(), None);
    assert!(select_list(&e, &[AttributeName::parse("nosuch").unwrap()]).is_err());
}

#[test]
fn pages_keep_links_and_group_records_by_the_attributes_they_have() {
    let e = account();
    let (a, b, c, gone) = (
        RecordId::new_random(),
        RecordId::new_random(),
        RecordId::new_random(),
        RecordId::new_random(),
    );
    let body = format!(
        r#"{{"@odata.context":"x","value":[
            {{"accountid":"{a}","name":"A"}},
            {{"@odata.context":"x/$deletedEntity","id":"{gone}","reason":"deleted"}},
            {{"accountid":"{b}","name":"B","revenue":1.5}},
            {{"accountid":"{c}","name":"C"}}],
          "@odata.nextLink":"https://x/next","@Microsoft.Dynamics.CRM.morerecords":true}}"#
    );
    let page = decode::page(&e, body.as_bytes()).unwrap();
    assert_eq!(page.deletes, vec![gone]);
    assert_eq!(page.next_link.as_deref(), Some("https://x/next"));
    assert!(page.more_records && page.delta_link.is_none());
    let shapes: Vec<(Vec<&str>, Vec<RecordId>)> = page
        .records
        .iter()
        .map(|batch| {
            let columns = batch.columns.iter().map(|c| c.as_str()).collect();
            (columns, batch.rows.iter().map(|(id, _)| *id).collect())
        })
        .collect();
    assert_eq!(
        shapes,
        vec![(vec!["name"], vec![a, c]), (vec!["name", "revenue"], vec![b])]
    );
    assert!(matches!(
        decode::page(&e, b"{\"value\":[1]}"),
        Err(SyncError::Protocol(_))
    ));
    assert!(
        matches!(decode::page(&e, b"{\"other\":[]}"), Err(SyncError::Protocol(m)) if m.contains("'value'"))
    );
    assert!(matches!(decode::page(&e, b"<html>"), Err(SyncError::Protocol(m)) if m.contains("not JSON")));
    assert!(
        matches!(decode::page(&e, b"{\"value\":[{\"name\":\"\xff\"}]}"), Err(SyncError::Protocol(m)) if m.contains("not UTF-8"))
    );
}

#[test]
fn paging_cookie_is_decoded_twice_from_the_annotation() {
    // As Dataverse documents it.
    let annotation = "<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253caccountid%2520last%253d%2522%257b5A9AE2EE-B8B9-E611-80F9-00155D01D0A0%257d%2522%2520first%253d%2522%257b475B158C-541C-E511-80D3-3863BB347BA8%257d%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />";
    assert_eq!(
        paging_cookie(annotation).unwrap(),
        "<cookie page=\"1\"><accountid last=\"{5A9AE2EE-B8B9-E611-80F9-00155D01D0A0}\" first=\"{475B158C-541C-E511-80D3-3863BB347BA8}\" /></cookie>"
    );
    assert_eq!(
        paging_cookie("<cookie pagenumber=\"2\" istracking=\"False\" />"),
        None
    );
}

#[test]
fn the_next_link_is_picked_out_of_a_body_without_decoding_it() {
    let hint = |body: &str| decode::next_link_hint(body.as_bytes());
    assert_eq!(
        hint(r#"{"value":[{"a":"x"}],"@odata.nextLink":"https://x/next?a=1"}"#).as_deref(),
        Some("https://x/next?a=1")
    );
    assert_eq!(
        hint(r#"{"@odata.nextLink" : "https://x/n\/2","value":[]}"#).as_deref(),
        Some("https://x/n/2"),
        "first member, spaces and escapes"
    );
    // Inside a string the quotes are escaped: the text is not a member.
    assert_eq!(
        hint(
            r#"{"value":[{"note":",\"@odata.nextLink\":\"https://x/no\""}],"@odata.deltaLink":"https://x/d"}"#
        ),
        None
    );
    assert_eq!(hint(r#"{"value":[],"@odata.deltaLink":"https://x/d"}"#), None);
    assert_eq!(hint(r#"{"value":[],"@odata.nextLink":7}"#), None);
    assert_eq!(hint(""), None);
}
