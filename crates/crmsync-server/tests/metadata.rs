//! `EntityDefinitions` and `$metadata` in Dataverse's shapes.

use crate::common;

use common::{ACME_ADMIN, TestServer, error, json};

#[tokio::test]
async fn entity_definitions_list_honours_select_and_filter() {
    let s = TestServer::start().await;
    let r = s
        .get(
            "acme",
            "EntityDefinitions?$select=LogicalName,EntitySetName",
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    let body = json(r).await;
    let names: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["LogicalName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["account", "contact", "opportunity", "lead", "task"]);
    assert!(
        body["value"][0].get("PrimaryIdAttribute").is_none(),
        "not selected"
    );
    let r = s
        .get(
            "acme",
            "EntityDefinitions?$filter=LogicalName eq 'contact'",
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    let body = json(r).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["EntitySetName"], "contacts");
    assert_eq!(body["value"][0]["ChangeTrackingEnabled"], true);
    assert_eq!(body["value"][0]["CanChangeTrackingBeEnabled"]["Value"], true);
}

#[tokio::test]
async fn entity_definition_by_key_expands_attributes_with_types() {
    let s = TestServer::start().await;
    let r = s
        .get(
            "acme",
            "EntityDefinitions(LogicalName='contact')?$expand=Attributes",
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    let body = json(r).await;
    assert_eq!(body["PrimaryIdAttribute"], "contactid");
    assert_eq!(body["PrimaryNameAttribute"], "fullname");
    let attrs = body["Attributes"].as_array().unwrap();
    let parent = attrs
        .iter()
        .find(|a| a["LogicalName"] == "parentcustomerid")
        .unwrap();
    assert_eq!(parent["AttributeType"], "Lookup");
    assert_eq!(parent["Targets"], serde_json::json!(["account", "contact"]));
    let name = attrs.iter().find(|a| a["LogicalName"] == "fullname").unwrap();
    assert_eq!(
        name["@odata.type"],
        "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    );
    assert!(name["MaxLength"].as_u64().unwrap() > 0);

    let r = s
        .get("acme", "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName", ACME_ADMIN)
        .send()
        .await
        .unwrap();
    let body = json(r).await;
    let picklists = body["value"].as_array().unwrap();
    assert!(picklists.iter().any(|a| a["LogicalName"] == "industrycode"));
    assert!(
        picklists
            .iter()
            .all(|a| a["@odata.type"] == "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata")
    );
    assert!(picklists[0].get("MaxLength").is_none());
    let r = s
        .get(
            "acme",
            "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='statecode')",
            ACME_ADMIN,
        )
        .send()
        .await
        .unwrap();
    let body = json(r).await;
    assert_eq!(body["OptionSet"]["Options"][1]["Value"], 1);
    assert_eq!(
        body["OptionSet"]["Options"][1]["Label"]["UserLocalizedLabel"]["Label"],
        "Inactive"
    );

    let msg = error(
        s.get("acme", "EntityDefinitions(LogicalName='nosuch')", ACME_ADMIN)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert!(msg.contains("nosuch"), "{msg}");
    let msg = error(
        s.get("acme", "EntityDefinitions?$expand=Keys", ACME_ADMIN)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(msg.contains("Keys"), "{msg}");
}

#[tokio::test]
async fn csdl_describes_entity_types_and_sets() {
    let s = TestServer::start().await;
    let r = s.get("acme", "$metadata", ACME_ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains(r#"<EntityType Name="account"><Key><PropertyRef Name="accountid"/></Key>"#),
        "{xml}"
    );
    assert!(xml.contains(r#"<Property Name="_parentaccountid_value" Type="Edm.Guid"/>"#));
    assert!(xml.contains(r#"<EntitySet Name="contacts" EntityType="mscrm.contact"/>"#));
    let doc = json(s.get("acme", "", ACME_ADMIN).send().await.unwrap()).await;
    assert!(
        doc["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "accounts")
    );
}
