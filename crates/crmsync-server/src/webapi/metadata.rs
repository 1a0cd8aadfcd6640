//! Metadata in Dataverse's shapes: the service document, `WhoAmI`, `EntityDefinitions`
//! (JSON, with `$select`, a simple `$filter`, `$expand=Attributes`, key and type-cast
//! segments) and `$metadata` (CSDL XML).

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crmsync_model::{AttributeMetadata, AttributeType, EntityMetadata, OptionSet};
use serde_json::{Map, Value as Json_, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::path::DefinitionPath;
use super::{ApiRequest, Ctx};
use crate::ApiError;

/// A stable id derived from a name (metadata ids, the organization id).
fn stable_id(kind: &str, name: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(kind)
        .chain_update([0])
        .chain_update(name)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn label(text: &str) -> Json_ {
    json!({"UserLocalizedLabel": {"Label": text, "LanguageCode": 1033}, "LocalizedLabels": [{"Label": text, "LanguageCode": 1033}]})
}

pub async fn service_document(ctx: &Ctx) -> Result<Response, ApiError> {
    let entities = ctx.caller.store.entities().await?;
    let value: Vec<Json_> = entities
        .iter()
        .map(|e| json!({"name": e.entity_set_name, "kind": "EntitySet", "url": e.entity_set_name}))
        .collect();
    Ok(Json(json!({"@odata.context": format!("{}$metadata", ctx.base), "value": value})).into_response())
}

pub fn who_am_i(ctx: &Ctx) -> Response {
    let org_id = stable_id("organization", ctx.caller.org.as_str());
    Json(json!({
        "@odata.context": format!("{}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse", ctx.base),
        "BusinessUnitId": org_id,
        "UserId": ctx.caller.user.id,
        "OrganizationId": org_id,
    }))
    .into_response()
}

fn metadata_type(ty: &AttributeType) -> &'static str {
    match ty {
        AttributeType::String { .. } => "StringAttributeMetadata",
        AttributeType::Memo { .. } => "MemoAttributeMetadata",
        AttributeType::Integer { .. } => "IntegerAttributeMetadata",
        AttributeType::BigInt => "BigIntAttributeMetadata",
        AttributeType::Decimal { .. } => "DecimalAttributeMetadata",
        AttributeType::Money { .. } => "MoneyAttributeMetadata",
        AttributeType::Double => "DoubleAttributeMetadata",
        AttributeType::Boolean => "BooleanAttributeMetadata",
        AttributeType::DateTime => "DateTimeAttributeMetadata",
        AttributeType::Uniqueidentifier => "UniqueIdentifierAttributeMetadata",
        AttributeType::Lookup { .. } => "LookupAttributeMetadata",
        AttributeType::Picklist { .. } => "PicklistAttributeMetadata",
        AttributeType::State { .. } => "StateAttributeMetadata",
        AttributeType::Status { .. } => "StatusAttributeMetadata",
    }
}

fn option_set_json(set: &OptionSet) -> Json_ {
    let options: Vec<Json_> = set
        .options
        .iter()
        .map(|o| {
            let mut opt = json!({"Value": o.value, "Label": label(&o.label)});
            if let Some(state) = o.state {
                opt["State"] = json!(state);
            }
            opt
        })
        .collect();
    json!({"Options": options})
}

/// One attribute in Dataverse's `AttributeMetadata` shape.
pub fn attribute_json(entity: &EntityMetadata, a: &AttributeMetadata) -> Map<String, Json_> {
    let ty = &a.attribute_type;
    let name = a.logical_name.as_str();
    let mut m = Map::new();
    m.insert(
        "@odata.type".into(),
        format!("#Microsoft.Dynamics.CRM.{}", metadata_type(ty)).into(),
    );
    m.insert(
        "MetadataId".into(),
        json!(stable_id("attribute", &format!("{}.{name}", entity.logical_name))),
    );
    m.insert("LogicalName".into(), name.into());
    m.insert("SchemaName".into(), name.into());
    m.insert("EntityLogicalName".into(), entity.logical_name.as_str().into());
    m.insert("AttributeType".into(), ty.type_name().into());
    m.insert(
        "AttributeTypeName".into(),
        json!({"Value": format!("{}Type", ty.type_name())}),
    );
    m.insert(
        "DisplayName".into(),
        label(if a.display_name.is_empty() {
            name
        } else {
            &a.display_name
        }),
    );
    m.insert(
        "IsPrimaryId".into(),
        (a.logical_name == entity.primary_id_attribute).into(),
    );
    m.insert(
        "IsPrimaryName".into(),
        (a.logical_name == entity.primary_name_attribute).into(),
    );
    let system = entity.is_system_attribute(name) && !matches!(name, "statecode" | "statuscode");
    m.insert(
        "IsValidForCreate".into(),
        (!system || a.logical_name == entity.primary_id_attribute).into(),
    );
    m.insert("IsValidForUpdate".into(), (!system).into());
    m.insert("IsValidForRead".into(), true.into());
    match ty {
        AttributeType::String { max_length } | AttributeType::Memo { max_length } => {
            m.insert("MaxLength".into(), json!(max_length));
        }
        AttributeType::Integer { min, max } => {
            m.insert("MinValue".into(), json!(min));
            m.insert("MaxValue".into(), json!(max));
        }
        AttributeType::Decimal { precision } | AttributeType::Money { precision } => {
            m.insert("Precision".into(), json!(precision));
        }
        AttributeType::Lookup { targets } => {
            m.insert(
                "Targets".into(),
                json!(targets.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
            );
        }
        _ => {}
    }
    if let Some(set) = ty.option_set() {
        m.insert("OptionSet".into(), option_set_json(set));
    }
    m
}

/// One entity in Dataverse's `EntityMetadata` shape, with its attributes if `with_attributes`.
pub fn entity_json(e: &EntityMetadata, with_attributes: bool) -> Map<String, Json_> {
    let name = e.logical_name.as_str();
    let mut m = Map::new();
    m.insert("MetadataId".into(), json!(stable_id("entity", name)));
    m.insert("LogicalName".into(), name.into());
    m.insert("SchemaName".into(), name.into());
    m.insert("EntitySetName".into(), e.entity_set_name.clone().into());
    m.insert(
        "PrimaryIdAttribute".into(),
        e.primary_id_attribute.as_str().into(),
    );
    m.insert(
        "PrimaryNameAttribute".into(),
        e.primary_name_attribute.as_str().into(),
    );
    m.insert(
        "DisplayName".into(),
        label(if e.display_name.is_empty() {
            name
        } else {
            &e.display_name
        }),
    );
    m.insert("ChangeTrackingEnabled".into(), true.into());
    m.insert(
        "CanChangeTrackingBeEnabled".into(),
        json!({"Value": true, "CanBeChanged": false}),
    );
    m.insert("IsCustomEntity".into(), false.into());
    m.insert("IsValidForAdvancedFind".into(), true.into());
    if with_attributes {
        let attrs: Vec<Json_> = e
            .attributes
            .iter()
            .map(|a| Json_::Object(attribute_json(e, a)))
            .collect();
        m.insert("Attributes".into(), attrs.into());
    }
    m
}

/// Keeps only the `$select`ed properties (annotations and `MetadataId` always stay).
fn select(mut m: Map<String, Json_>, select: Option<&[String]>, keep: &[&str]) -> Map<String, Json_> {
    if let Some(props) = select {
        m.retain(|k, _| {
            k.starts_with('@')
                || k == "MetadataId"
                || keep.contains(&k.as_str())
                || props.iter().any(|p| p == k)
        });
    }
    m
}

/// `$filter` over metadata: `Prop eq 'text'|true|false|number`, joined by `and` / `or`.
fn filter_matches(m: &Map<String, Json_>, filter: &str) -> Result<bool, ApiError> {
    let any = |clause: &str| -> Result<bool, ApiError> {
        let mut all = true;
        for part in clause.split(" and ") {
            let mut words = part.trim().splitn(3, ' ');
            let (Some(prop), Some(op), Some(lit)) = (words.next(), words.next(), words.next()) else {
                return Err(ApiError::bad_request(format!(
                    "unsupported metadata filter '{part}'"
                )));
            };
            let lit = lit.trim();
            let expected: Json_ = if let Some(s) = lit.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')) {
                s.replace("''", "'").into()
            } else {
                serde_json::from_str(lit)
                    .map_err(|_| ApiError::bad_request(format!("bad literal '{lit}'")))?
            };
            let actual = match m.get(prop) {
                Some(Json_::Object(o)) => o.get("Value").cloned().unwrap_or(Json_::Null),
                Some(v) => v.clone(),
                None => Json_::Null,
            };
            let equal = actual == expected;
            all &= match op {
                "eq" => equal,
                "ne" => !equal,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unsupported metadata filter operator '{op}'"
                    )));
                }
            };
        }
        Ok(all)
    };
    for clause in filter.split(" or ") {
        if any(clause)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn list_param(request: &ApiRequest, name: &str) -> Option<Vec<String>> {
    request.query_param(name).map(|s| {
        s.split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    })
}

/// `$expand=Attributes` or `$expand=Attributes($select=a,b)`: whether, and which properties.
fn expand_attributes(request: &ApiRequest) -> Result<Option<Option<Vec<String>>>, ApiError> {
    let Some(expand) = request.query_param("$expand") else {
        return Ok(None);
    };
    let expand = expand.trim();
    if expand == "Attributes" {
        return Ok(Some(None));
    }
    if let Some(inner) = expand
        .strip_prefix("Attributes(")
        .and_then(|e| e.strip_suffix(')'))
    {
        let props = inner.strip_prefix("$select=").ok_or_else(|| {
            ApiError::bad_request("only $select is supported inside $expand=Attributes(...)")
        })?;
        return Ok(Some(Some(
            props.split(',').map(|p| p.trim().to_owned()).collect(),
        )));
    }
    Err(ApiError::bad_request(format!(
        "unsupported $expand '{expand}' on EntityDefinitions: use Attributes"
    )))
}

pub async fn entity_definitions(
    ctx: &Ctx,
    request: &ApiRequest,
    def: DefinitionPath,
) -> Result<Response, ApiError> {
    let entities = ctx.caller.store.entities().await?;
    let selected = list_param(request, "$select");
    let filter = request.query_param("$filter");
    let context = format!("{}$metadata#EntityDefinitions", ctx.base);
    let Some(logical_name) = &def.logical_name else {
        let expand = expand_attributes(request)?;
        let mut value = Vec::new();
        for e in &entities {
            let mut m = select(entity_json(e, false), selected.as_deref(), &[]);
            if filter.is_some_and(|f| !filter_matches(&m, f).unwrap_or(false)) {
                continue;
            }
            if let Some(f) = filter {
                filter_matches(&m, f)?;
            }
            if let Some(attr_select) = &expand {
                let attrs: Vec<Json_> = e
                    .attributes
                    .iter()
                    .map(|a| Json_::Object(select(attribute_json(e, a), attr_select.as_deref(), &[])))
                    .collect();
                m.insert("Attributes".into(), attrs.into());
            }
            value.push(Json_::Object(m));
        }
        return Ok(Json(json!({"@odata.context": context, "value": value})).into_response());
    };
    let e = entities
        .iter()
        .find(|e| e.logical_name.as_str() == logical_name)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Could not find an entity with LogicalName = '{logical_name}'"
            ))
        })?;
    if !def.attributes {
        let mut m = select(entity_json(e, false), selected.as_deref(), &[]);
        if let Some(attr_select) = expand_attributes(request)? {
            let attrs: Vec<Json_> = e
                .attributes
                .iter()
                .map(|a| Json_::Object(select(attribute_json(e, a), attr_select.as_deref(), &[])))
                .collect();
            m.insert("Attributes".into(), attrs.into());
        }
        m.insert("@odata.context".into(), format!("{context}/$entity").into());
        return Ok(Json(m).into_response());
    }
    let mut attrs: Vec<Map<String, Json_>> = e
        .attributes
        .iter()
        .filter(|a| {
            def.cast
                .as_deref()
                .is_none_or(|c| c == metadata_type(&a.attribute_type))
        })
        .filter(|a| {
            def.attribute
                .as_deref()
                .is_none_or(|n| n == a.logical_name.as_str())
        })
        .map(|a| select(attribute_json(e, a), selected.as_deref(), &[]))
        .collect();
    if let Some(f) = filter {
        let mut kept = Vec::new();
        for a in attrs {
            if filter_matches(&a, f)? {
                kept.push(a);
            }
        }
        attrs = kept;
    }
    let context = format!("{context}('{logical_name}')/Attributes");
    if let Some(name) = &def.attribute {
        let mut one = attrs
            .pop()
            .ok_or_else(|| ApiError::not_found(format!("Could not find attribute '{name}'")))?;
        one.insert("@odata.context".into(), format!("{context}/$entity").into());
        return Ok(Json(one).into_response());
    }
    Ok(Json(json!({"@odata.context": context, "value": attrs})).into_response())
}

fn edm_type(ty: &AttributeType) -> &'static str {
    match ty {
        AttributeType::String { .. } | AttributeType::Memo { .. } => "Edm.String",
        AttributeType::Integer { .. }
        | AttributeType::Picklist { .. }
        | AttributeType::State { .. }
        | AttributeType::Status { .. } => "Edm.Int32",
        AttributeType::BigInt => "Edm.Int64",
        AttributeType::Decimal { .. } | AttributeType::Money { .. } => "Edm.Decimal",
        AttributeType::Double => "Edm.Double",
        AttributeType::Boolean => "Edm.Boolean",
        AttributeType::DateTime => "Edm.DateTimeOffset",
        AttributeType::Uniqueidentifier | AttributeType::Lookup { .. } => "Edm.Guid",
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `$metadata`: the CSDL of the org's entities.
pub async fn csdl(ctx: &Ctx) -> Result<Response, ApiError> {
    let entities = ctx.caller.store.entities().await?;
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices><Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">"#,
    );
    for e in &entities {
        xml.push_str(&format!(
            r#"<EntityType Name="{0}"><Key><PropertyRef Name="{1}"/></Key>"#,
            xml_escape(e.logical_name.as_str()),
            xml_escape(e.primary_id_attribute.as_str())
        ));
        for a in &e.attributes {
            let name = match a.attribute_type {
                AttributeType::Lookup { .. } => format!("_{}_value", a.logical_name),
                _ => a.logical_name.to_string(),
            };
            xml.push_str(&format!(
                r#"<Property Name="{}" Type="{}"/>"#,
                xml_escape(&name),
                edm_type(&a.attribute_type)
            ));
        }
        for a in &e.attributes {
            if let AttributeType::Lookup { targets } = &a.attribute_type {
                for t in targets {
                    let nav = if targets.len() == 1 {
                        a.logical_name.to_string()
                    } else {
                        format!("{}_{t}", a.logical_name)
                    };
                    xml.push_str(&format!(
                        r#"<NavigationProperty Name="{}" Type="mscrm.{}"/>"#,
                        xml_escape(&nav),
                        xml_escape(t.as_str())
                    ));
                }
            }
        }
        xml.push_str("</EntityType>");
    }
    xml.push_str(r#"<EntityContainer Name="System">"#);
    for e in &entities {
        xml.push_str(&format!(
            r#"<EntitySet Name="{}" EntityType="mscrm.{}"/>"#,
            xml_escape(&e.entity_set_name),
            xml_escape(e.logical_name.as_str())
        ));
    }
    xml.push_str("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>");
    let mut response = xml.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    Ok(response)
}
