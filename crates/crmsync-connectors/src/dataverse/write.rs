//! Writes to the server as one Dataverse `$batch` (`multipart/mixed`): the request body, and
//! the answers read back in order.
//!
//! Each write is a `PATCH {set}({id})` (an upsert by id; `If-Match: *` for update only,
//! `If-None-Match: *` for create only) or a `DELETE {set}({id})`. Independent writes go as
//! top-level requests with `Prefer: odata.continue-on-error`, so one failure does not stop the
//! others; atomic writes go in one change set. Lookups are written as
//! `{attribute}@odata.bind` (`{attribute}_{target}@odata.bind` for lookups with several
//! targets) with `/{set}({id})`.

use crmsync_model::{AttributeType, EntityMetadata, Value};
use crmsync_sync::{ServerWrite, SyncError, WriteAction, WriteFailure, WriteResults};
use reqwest::Url;
use serde_json::Value as Json;

/// The JSON body of a write of `values` to `entity`.
pub fn record_body(
    entity: &EntityMetadata,
    entities: &[EntityMetadata],
    write: &ServerWrite,
) -> Result<Json, SyncError> {
    let mut out = Vec::new();
    write_record_body(&mut out, entity, entities, write)?;
    serde_json::from_slice(&out).map_err(|e| SyncError::Invalid(format!("invalid record body: {e}")))
}

/// Writes the JSON body of a write of `values` to `entity` into `out`, value by value (no
/// intermediate JSON tree: a batch holds up to a thousand of them).
fn write_record_body(
    out: &mut Vec<u8>,
    entity: &EntityMetadata,
    entities: &[EntityMetadata],
    write: &ServerWrite,
) -> Result<(), SyncError> {
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str, suffix: &str| {
        out.push(if first { b'{' } else { b',' });
        first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(suffix.as_bytes());
        out.extend_from_slice(b"\":");
    };
    for (name, value) in &write.values {
        let Some(attr) = entity.attribute(name.as_str()) else {
            return Err(SyncError::Invalid(format!(
                "{} has no attribute '{name}'",
                entity.logical_name
            )));
        };
        match (&attr.attribute_type, value) {
            (AttributeType::Lookup { targets }, value) => {
                let several = targets.len() > 1;
                match value {
                    Value::Null => {
                        // Clearing a lookup: one navigation property per target clears it.
                        for target in targets {
                            if several {
                                key(out, &format!("{name}_{target}"), "@odata.bind");
                            } else {
                                key(out, name.as_str(), "@odata.bind");
                            }
                            out.extend_from_slice(b"null");
                            if !several {
                                break;
                            }
                        }
                    }
                    Value::Lookup(reference) => {
                        let set = entities
                            .iter()
                            .find(|e| e.logical_name == reference.entity)
                            .map(|e| e.entity_set_name.as_str())
                            .ok_or_else(|| {
                                SyncError::Invalid(format!(
                                    "{name} refers to the unknown entity '{}'",
                                    reference.entity
                                ))
                            })?;
                        if several {
                            key(out, &format!("{name}_{}", reference.entity), "@odata.bind");
                        } else {
                            key(out, name.as_str(), "@odata.bind");
                        }
                        json_string(out, &format!("/{set}({})", reference.id));
                    }
                    other => {
                        return Err(SyncError::Invalid(format!(
                            "{name} is a lookup but holds {other:?}"
                        )));
                    }
                }
            }
            (_, value) => {
                key(out, name.as_str(), "");
                write_value(out, value);
            }
        }
    }
    if first {
        out.push(b'{');
    }
    out.push(b'}');
    Ok(())
}

/// A JSON string, escaped.
fn json_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing to memory does not fail");
}

/// A value as [`Value::write_json`] writes it.
fn write_value(out: &mut Vec<u8>, value: &Value) {
    use std::io::Write;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::String(s) => json_string(out, s),
        Value::Integer(i) | Value::OptionSet(i) => {
            let _ = write!(out, "{i}");
        }
        Value::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Guid(g) => {
            let _ = write!(out, "\"{g}\"");
        }
        other => other.write_json(out),
    }
}

/// Writes one request part of a batch.
fn write_part(
    out: &mut Vec<u8>,
    api: &Url,
    entity: &EntityMetadata,
    entities: &[EntityMetadata],
    write: &ServerWrite,
    content_id: usize,
) -> Result<(), SyncError> {
    use std::io::Write;
    let url = api
        .join(&format!("{}({})", entity.entity_set_name, write.id))
        .map_err(|e| SyncError::Invalid(format!("invalid record URL: {e}")))?;
    let (method, condition) = match write.action {
        WriteAction::Upsert => ("PATCH", None),
        WriteAction::Create => ("PATCH", Some("If-None-Match: *")),
        WriteAction::Update => ("PATCH", Some("If-Match: *")),
        WriteAction::Delete => ("DELETE", None),
    };
    let _ = write!(
        out,
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {content_id}\r\n\r\n{method} {url} HTTP/1.1\r\n"
    );
    if let Some(condition) = condition {
        let _ = write!(out, "{condition}\r\n");
    }
    if write.action == WriteAction::Delete {
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(b"Content-Type: application/json\r\n\r\n");
        write_record_body(out, entity, entities, write)?;
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// The `$batch` body of `writes` (and its content type).
pub fn batch_body(
    api: &Url,
    entities: &[EntityMetadata],
    writes: &[ServerWrite],
    atomic: bool,
) -> Result<(String, String), SyncError> {
    use std::io::Write;
    let batch = format!("batch_{}", uuid_like());
    let mut body = Vec::with_capacity(writes.len() * 512);
    let changeset = atomic.then(|| format!("changeset_{}", uuid_like()));
    if let Some(changeset) = &changeset {
        let _ = write!(
            body,
            "--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        );
    }
    let delimiter = changeset.as_deref().unwrap_or(&batch);
    for (i, write) in writes.iter().enumerate() {
        let entity = entities
            .iter()
            .find(|e| e.logical_name == write.entity)
            .ok_or_else(|| SyncError::Invalid(format!("unknown entity '{}'", write.entity)))?;
        let _ = write!(body, "--{delimiter}\r\n");
        write_part(&mut body, api, entity, entities, write, i + 1)?;
    }
    if let Some(changeset) = &changeset {
        let _ = write!(body, "--{changeset}--\r\n");
    }
    let _ = write!(body, "--{batch}--\r\n");
    let body = String::from_utf8(body).expect("the body is written from strings");
    Ok((format!("multipart/mixed; boundary={batch}"), body))
}

fn uuid_like() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// One answer of a batch: status, `Content-ID` and body.
#[derive(Clone, Debug, PartialEq)]
pub struct PartAnswer {
    pub status: u16,
    pub content_id: Option<usize>,
    pub body: String,
}

fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Splits a multipart body on `boundary` into its parts (headers and body).
fn split_parts<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    for chunk in body.split(delimiter.as_str()).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        out.push(chunk.trim_start_matches(['\r', '\n']));
    }
    out
}

/// Header block and the rest, split at the first empty line.
fn head_and_rest(text: &str) -> (&str, &str) {
    if let Some(i) = text.find("\r\n\r\n") {
        (&text[..i], &text[i + 4..])
    } else if let Some(i) = text.find("\n\n") {
        (&text[..i], &text[i + 2..])
    } else {
        (text, "")
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The answers of a batch response, change sets flattened, in order.
pub fn parse_batch_response(content_type: &str, body: &str) -> Result<Vec<PartAnswer>, SyncError> {
    let boundary = boundary_of(content_type).ok_or_else(|| {
        SyncError::Protocol(format!(
            "the batch answer is not multipart (Content-Type: {content_type})"
        ))
    })?;
    let mut answers = Vec::new();
    collect_answers(body, &boundary, &mut answers, 0)?;
    Ok(answers)
}

fn collect_answers(
    body: &str,
    boundary: &str,
    out: &mut Vec<PartAnswer>,
    depth: usize,
) -> Result<(), SyncError> {
    for part in split_parts(body, boundary) {
        let (head, rest) = head_and_rest(part);
        let content_type = header(head, "content-type").unwrap_or_default();
        if content_type.to_ascii_lowercase().starts_with("multipart/mixed") && depth == 0 {
            let inner = boundary_of(content_type)
                .ok_or_else(|| SyncError::Protocol("a change set answer has no boundary".into()))?;
            collect_answers(rest, &inner, out, depth + 1)?;
            continue;
        }
        let content_id = header(head, "content-id").and_then(|v| v.parse().ok());
        let (http_head, http_body) = head_and_rest(rest);
        let status_line = http_head.lines().next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                SyncError::Protocol(format!("a batch answer has no status line: '{status_line}'"))
            })?;
        out.push(PartAnswer {
            status,
            content_id,
            body: http_body.trim_end().to_owned(),
        });
    }
    Ok(())
}

fn error_message(body: &str, status: u16) -> String {
    serde_json::from_str::<Json>(body)
        .ok()
        .and_then(|j| {
            j.pointer("/error/message")
                .and_then(Json::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            let text: String = body.trim().chars().take(300).collect();
            if text.is_empty() {
                format!("status {status}")
            } else {
                text
            }
        })
}

fn failure(answer: &PartAnswer) -> WriteFailure {
    let message = error_message(&answer.body, answer.status);
    match answer.status {
        404 => WriteFailure::NotFound(message),
        429 | 500.. => WriteFailure::Retryable(format!("the server answered {}: {message}", answer.status)),
        status => WriteFailure::Rejected { status, message },
    }
}

/// The result of each of `count` writes from the batch's answers.
pub fn results(answers: &[PartAnswer], count: usize, atomic: bool) -> Result<WriteResults, SyncError> {
    if answers.len() == count {
        return Ok(answers
            .iter()
            .map(|a| {
                if (200..300).contains(&a.status) {
                    Ok(())
                } else {
                    Err(failure(a))
                }
            })
            .collect());
    }
    if atomic && answers.len() == 1 && !(200..300).contains(&answers[0].status) {
        // A failed change set answers once, naming the failed operation when it can.
        let failed = answers[0]
            .content_id
            .filter(|i| (1..=count).contains(i))
            .unwrap_or(1);
        let why = failure(&answers[0]);
        return Ok((1..=count)
            .map(|i| {
                if i == failed || matches!(why, WriteFailure::Retryable(_)) {
                    Err(why.clone())
                } else {
                    Err(WriteFailure::Rejected {
                        status: 424,
                        message: format!(
                            "not applied: another change of the set failed ({})",
                            why.message()
                        ),
                    })
                }
            })
            .collect());
    }
    Err(SyncError::Protocol(format!(
        "the batch answered {} results for {count} writes",
        answers.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmsync_model::{AttributeName, EntityName, EntityReference, RecordId};
    use std::collections::BTreeMap;

    fn entities() -> Vec<EntityMetadata> {
        crmsync_sample::crm_entities()
    }

    fn write(entity: &str, action: WriteAction, values: Vec<(&str, Value)>) -> ServerWrite {
        ServerWrite {
            entity: EntityName::parse(entity).unwrap(),
            id: RecordId::new_random(),
            action,
            values: values
                .into_iter()
                .map(|(k, v)| (AttributeName::parse(k).unwrap(), v))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn values_are_written_as_their_web_api_json() {
        let es = entities();
        let account = es.iter().find(|e| e.logical_name.as_str() == "account").unwrap();
        let generator = crmsync_sample::SampleGenerator::new(7, 200);
        let batch = generator
            .batches(crmsync_sample::SampleEntity::Account, 200)
            .next()
            .unwrap();
        let mut checked = 0;
        for (id, row) in &batch.rows {
            let id = *id;
            let mut values: BTreeMap<AttributeName, Value> = batch
                .columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .filter(|(k, _)| {
                    // Lookups are written as bindings (see the test below).
                    !matches!(
                        account.attribute(k.as_str()).unwrap().attribute_type,
                        AttributeType::Lookup { .. }
                    )
                })
                .collect();
            values.insert(
                AttributeName::parse("name").unwrap(),
                Value::String(format!("\"Quoted\" \\ line\nbreak, tab\t, é, 😀 {id}")),
            );
            let w = ServerWrite {
                entity: account.logical_name.clone(),
                id,
                action: WriteAction::Upsert,
                values,
            };
            let body = record_body(account, &es, &w).unwrap();
            let expected: serde_json::Map<String, Json> = w
                .values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_json()))
                .collect();
            assert_eq!(body, Json::Object(expected));
            checked += 1;
        }
        assert_eq!(checked, 200);
        let empty = write("account", WriteAction::Update, vec![]);
        assert_eq!(record_body(account, &es, &empty).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn lookups_are_bound_by_navigation_property() {
        let es = entities();
        let account = RecordId::new_random();
        let w = write(
            "contact",
            WriteAction::Upsert,
            vec![
                ("lastname", Value::String("Ode".into())),
                (
                    "parentcustomerid",
                    Value::Lookup(EntityReference {
                        entity: EntityName::parse("account").unwrap(),
                        id: account,
                    }),
                ),
            ],
        );
        let contact = es.iter().find(|e| e.logical_name.as_str() == "contact").unwrap();
        let body = record_body(contact, &es, &w).unwrap();
        assert_eq!(body["lastname"], "Ode");
        assert_eq!(
            body["parentcustomerid_account@odata.bind"],
            format!("/accounts({account})")
        );
    }

    #[test]
    fn a_batch_names_each_write_with_its_condition() {
        let es = entities();
        let api = Url::parse("http://h/org/api/data/v9.2/").unwrap();
        let writes = vec![
            write(
                "account",
                WriteAction::Upsert,
                vec![("name", Value::String("A".into()))],
            ),
            write(
                "account",
                WriteAction::Update,
                vec![("name", Value::String("B".into()))],
            ),
            write("account", WriteAction::Delete, vec![]),
        ];
        let (ct, body) = batch_body(&api, &es, &writes, false).unwrap();
        let boundary = boundary_of(&ct).unwrap();
        assert_eq!(split_parts(&body, &boundary).len(), 3);
        assert!(body.contains(&format!(
            "PATCH http://h/org/api/data/v9.2/accounts({}) HTTP/1.1",
            writes[0].id
        )));
        assert!(body.contains("If-Match: *"));
        assert!(body.contains(&format!(
            "DELETE http://h/org/api/data/v9.2/accounts({}) HTTP/1.1",
            writes[2].id
        )));
    }

    #[test]
    fn answers_are_read_in_order_with_change_sets_flattened() {
        let body = "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n\
--b\r\nContent-Type: application/http\r\nContent-ID: 2\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"NotFound\",\"message\":\"gone\"}}\r\n\
--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n--c--\r\n\
--b--\r\n";
        let answers = parse_batch_response("multipart/mixed; boundary=b", body).unwrap();
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[1].status, 404);
        assert_eq!(answers[1].content_id, Some(2));
        let r = results(&answers, 3, false).unwrap();
        assert_eq!(r[1], Err(WriteFailure::NotFound("gone".into())));
        assert!(r[0].is_ok() && r[2].is_ok());
    }

    #[test]
    fn a_failed_change_set_fails_each_write() {
        let answers = vec![PartAnswer {
            status: 400,
            content_id: Some(2),
            body: "{\"error\":{\"message\":\"bad value\"}}".into(),
        }];
        let r = results(&answers, 3, true).unwrap();
        assert_eq!(
            r[1],
            Err(WriteFailure::Rejected {
                status: 400,
                message: "bad value".into()
            })
        );
        assert!(matches!(r[0], Err(WriteFailure::Rejected { status: 424, .. })));
    }
}
