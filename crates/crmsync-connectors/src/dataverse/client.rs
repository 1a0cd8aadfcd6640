//! [`DataverseConnector`]: `crmsync_sync::Connector` over the Dataverse Web API
//! (`{url}/api/data/v9.2/`), for crmsync servers and Dynamics 365 alike.
//!
//! Requests (GET, JSON; writes as one `POST $batch`, see `write`):
//! - `WhoAmI`;
//! - `EntityDefinitions?$select=…&$expand=Attributes`, plus, for entities whose option
//!   attributes came without options (Dataverse only returns them through a type-cast
//!   segment), `EntityDefinitions(LogicalName='x')/Attributes/Microsoft.Dynamics.CRM.
//!   PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet…` (and State, Status);
//! - change tracking: `{set}?$select=…` with `Prefer: odata.track-changes,
//!   odata.maxpagesize=N,odata.include-annotations="…lookuplogicalname"`, `$deltatoken=` for a
//!   delta, and `@odata.nextLink` as given for the next page;
//! - FetchXML: `{set}?fetchXml=…`, with the paging cookie handed back decoded.
//!
//! Links the server returns are followed only when they point under the configured Web API
//! (same scheme, host, port and path prefix): a server cannot make the connector send its
//! credentials elsewhere.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use crmsync_model::{AttributeName, EntityMetadata, EntityName, OptionSet, RecordId};
use crmsync_query::{Query, to_fetchxml};
use crmsync_sync::{
    ChangesPage, Connector, Continuation, FetchPage, PageSizes, ReadPosition, ServerIdentity, ServerWrite,
    SyncError, WriteResults,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;
use serde_json::Value as Json;

use super::auth::Auth;
use super::config::{Backend, DataverseConfig};
use super::decode;
use super::mapping::{self, LOOKUP_NAME};
use super::retry::RetryPolicy;
use super::transport::{Request, Transport, http_client};
use super::write;

/// `EntityDefinitions` requests in flight at once while fetching option sets.
const METADATA_CONCURRENCY: usize = 8;

/// Escaped in query values: everything but unreserved characters and the punctuation OData
/// query options use, so URLs stay readable in logs.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'$')
    .remove(b',')
    .remove(b'(')
    .remove(b')')
    .remove(b'\'')
    .remove(b':')
    .remove(b'/')
    .remove(b'*');

fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A connector to one server org over the Dataverse Web API.
pub struct DataverseConnector {
    api: Url,
    backend: Backend,
    transport: Transport,
}

impl std::fmt::Debug for DataverseConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataverseConnector")
            .field("api", &self.api.as_str())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl DataverseConnector {
    /// Checks the configuration (URL, credentials for the backend) without any request; the
    /// first request checks the server and credentials ([`Connector::who_am_i`]).
    pub fn new(config: DataverseConfig) -> Result<Self, SyncError> {
        let api = config.api_url()?;
        let auth = Auth::from_config(&config)?;
        let transport = Transport {
            http: http_client(&config)?,
            auth: Arc::new(auth),
            retry: RetryPolicy::new(config.max_retries),
        };
        Ok(Self {
            api,
            backend: config.backend,
            transport,
        })
    }

    /// Replaces the retry schedule (tests shorten the waits).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.transport.retry = policy;
        self
    }

    /// The Web API base URL, ending with `/`.
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, SyncError> {
        let mut url = self
            .api
            .join(path)
            .map_err(|e| SyncError::Invalid(format!("invalid request path '{path}': {e}")))?;
        if !query.is_empty() {
            url.set_query(Some(&query_string(query)));
        }
        Ok(url)
    }

    /// A link from the server, if it points under our Web API base.
    fn server_link(&self, link: &str) -> Result<Url, SyncError> {
        let url = Url::parse(link)
            .map_err(|e| SyncError::Protocol(format!("the server sent an invalid link '{link}': {e}")))?;
        if url.origin() != self.api.origin() || !url.path().starts_with(self.api.path()) {
            return Err(SyncError::Protocol(format!(
                "the server sent a link outside its Web API ({link}); it is not followed"
            )));
        }
        Ok(url)
    }

    async fn option_sets(&self, entity: &Json) -> Result<HashMap<String, OptionSet>, SyncError> {
        let name = entity
            .get("LogicalName")
            .and_then(Json::as_str)
            .unwrap_or_default();
        if !mapping::lacks_option_sets(entity) || EntityName::parse(name).is_err() {
            return Ok(HashMap::new());
        }
        let mut sets = HashMap::new();
        for (cast, expand) in [
            (
                "Picklist",
                "OptionSet($select=Options),GlobalOptionSet($select=Options)",
            ),
            ("State", "OptionSet($select=Options)"),
            ("Status", "OptionSet($select=Options)"),
        ] {
            let path = format!(
                "EntityDefinitions(LogicalName='{name}')/Attributes/Microsoft.Dynamics.CRM.{cast}AttributeMetadata"
            );
            let url = self.url(&path, &[("$select", "LogicalName"), ("$expand", expand)])?;
            let json = self.transport.get_json(&url, None).await?;
            sets.extend(mapping::option_sets_from_json(values(&json)?));
        }
        Ok(sets)
    }

    /// The body of one change-tracking page.
    async fn change_body(
        &self,
        entity: &EntityMetadata,
        columns: &[AttributeName],
        position: &ReadPosition,
        page_size: usize,
    ) -> Result<Vec<u8>, SyncError> {
        let (url, prefer) = self.change_request(entity, columns, position, page_size)?;
        self.transport.get(&url, Some(&prefer)).await
    }

    /// The URL and `Prefer` header of one change-tracking page.
    fn change_request(
        &self,
        entity: &EntityMetadata,
        columns: &[AttributeName],
        position: &ReadPosition,
        page_size: usize,
    ) -> Result<(Url, String), SyncError> {
        let select = mapping::select_list(entity, columns)?;
        let mut query: Vec<(&str, &str)> = select.iter().map(|s| ("$select", s.as_str())).collect();
        let url = match position {
            ReadPosition::Initial => self.url(&entity.entity_set_name, &query)?,
            ReadPosition::Delta(token) => {
                query.push(("$deltatoken", token));
                self.url(&entity.entity_set_name, &query)?
            }
            ReadPosition::Next(link) => self.server_link(link)?,
        };
        let prefer = format!(
            "odata.track-changes,odata.maxpagesize={},odata.include-annotations=\"{LOOKUP_NAME}\"",
            page_size.max(1)
        );
        Ok((url, prefer))
    }

    /// Starts reading the change-tracking page at `link` in a task of its own, so it goes on
    /// while the caller decodes and hands over the page before; dropping the handle stops it.
    fn read_ahead(
        &self,
        entity: &EntityMetadata,
        columns: &[AttributeName],
        link: &str,
        page_size: usize,
    ) -> Option<ReadAhead> {
        let position = ReadPosition::Next(link.to_owned());
        let (url, prefer) = self.change_request(entity, columns, &position, page_size).ok()?;
        let transport = self.transport.clone();
        Some(ReadAhead(tokio::spawn(async move {
            transport.get(&url, Some(&prefer)).await
        })))
    }

    /// A change-tracking page from its body.
    async fn change_page(&self, entity: &EntityMetadata, body: Vec<u8>) -> Result<ChangesPage, SyncError> {
        let page = decode_off_thread(entity, body).await?;
        let next = if let Some(next) = page.next_link {
            self.server_link(&next)?;
            Continuation::More(next)
        } else if let Some(delta) = page.delta_link {
            let token = delta_token(&self.server_link(&delta)?)
                .ok_or_else(|| SyncError::Protocol(format!("the delta link has no $deltatoken: {delta}")))?;
            Continuation::Done(token)
        } else {
            return Err(SyncError::Protocol(format!(
                "a change-tracking page of '{}' has neither a next link nor a delta link",
                entity.entity_set_name
            )));
        };
        let (upserts, deletes) = (page.records, page.deletes);
        tracing::debug!(
            entity = %entity.logical_name,
            upserts = upserts.iter().map(|b| b.len()).sum::<usize>(),
            deletes = deletes.len(),
            more = matches!(next, Continuation::More(_)),
            "change-tracking page read"
        );
        Ok(ChangesPage {
            upserts,
            deletes,
            next,
        })
    }
}

fn values(json: &Json) -> Result<&[Json], SyncError> {
    json.get("value")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| SyncError::Protocol("the answer has no 'value' collection".into()))
}

fn guid(json: &Json, key: &str) -> Result<RecordId, SyncError> {
    json.get(key)
        .and_then(Json::as_str)
        .and_then(|s| RecordId::parse(s).ok())
        .ok_or_else(|| SyncError::Protocol(format!("WhoAmI answered without a valid {key}")))
}

/// A change-tracking page being read by a task of its own, stopped when dropped.
struct ReadAhead(tokio::task::JoinHandle<Result<Vec<u8>, SyncError>>);

impl ReadAhead {
    async fn body(mut self) -> Result<Vec<u8>, SyncError> {
        match (&mut self.0).await {
            Ok(body) => body,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(SyncError::Protocol(format!("reading a page ahead stopped: {e}"))),
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Bodies from this size on are decoded on a blocking thread.
const DECODE_OFF_THREAD: usize = 256 * 1024;

/// Decodes a page of records. A large one is decoded on a blocking thread, so the task that
/// reads pages keeps driving what it does meanwhile (a sync writes the previous page while it
/// reads the next one).
async fn decode_off_thread(entity: &EntityMetadata, body: Vec<u8>) -> Result<decode::Page, SyncError> {
    if body.len() < DECODE_OFF_THREAD {
        return decode::page(entity, &body);
    }
    let entity = entity.clone();
    match tokio::task::spawn_blocking(move || decode::page(&entity, &body)).await {
        Ok(page) => page,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(SyncError::Protocol(format!("decoding a page stopped: {e}"))),
    }
}

/// The `$deltatoken` of a delta link, decoded.
fn delta_token(link: &Url) -> Option<String> {
    link.query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("$deltatoken"))
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
}

#[async_trait]
impl Connector for DataverseConnector {
    async fn who_am_i(&self) -> Result<ServerIdentity, SyncError> {
        let json = self.transport.get_json(&self.url("WhoAmI", &[])?, None).await?;
        Ok(ServerIdentity {
            user_id: guid(&json, "UserId")?,
            organization_id: guid(&json, "OrganizationId")?,
        })
    }

    async fn entities(&self) -> Result<Vec<EntityMetadata>, SyncError> {
        let url = self.url(
            "EntityDefinitions",
            &[
                (
                    "$select",
                    "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,DisplayName",
                ),
                ("$expand", "Attributes"),
            ],
        )?;
        let json = self.transport.get_json(&url, None).await?;
        let definitions = values(&json)?;
        let option_sets: Vec<HashMap<String, OptionSet>> = futures::stream::iter(0..definitions.len())
            .map(|i| self.option_sets(&definitions[i]))
            .buffered(METADATA_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(definitions
            .iter()
            .zip(&option_sets)
            .filter_map(|(e, sets)| mapping::entity_from_json(e, sets))
            .collect())
    }

    async fn changes(
        &self,
        entity: &EntityMetadata,
        columns: &[AttributeName],
        position: &ReadPosition,
        page_size: usize,
    ) -> Result<ChangesPage, SyncError> {
        let body = self.change_body(entity, columns, position, page_size).await?;
        self.change_page(entity, body).await
    }

    /// Reads each next page while the one before is decoded: the link to it is picked out of
    /// the body before the body is decoded, and checked against the decoded page's (a page
    /// read from a link the page does not give is dropped, and the given one read).
    fn change_pages<'a>(
        &'a self,
        entity: &'a EntityMetadata,
        columns: &'a [AttributeName],
        from: ReadPosition,
        sizes: PageSizes,
    ) -> BoxStream<'a, Result<ChangesPage, SyncError>> {
        enum Read {
            From(ReadPosition, usize),
            Ahead(ReadAhead, usize),
        }
        futures::stream::unfold(Some(Read::From(from, sizes.first)), move |read| async move {
            let (body, size) = match read? {
                Read::From(position, size) => {
                    (self.change_body(entity, columns, &position, size).await, size)
                }
                Read::Ahead(ahead, size) => (ahead.body().await, size),
            };
            let body = match body {
                Ok(body) => body,
                Err(e) => return Some((Err(e), None)),
            };
            let size = sizes.after(size);
            let link = decode::next_link_hint(&body);
            let ahead = link
                .as_deref()
                .and_then(|link| self.read_ahead(entity, columns, link, size));
            let page = self.change_page(entity, body).await;
            let next = match &page {
                Ok(ChangesPage {
                    next: Continuation::More(next),
                    ..
                }) => Some(match ahead {
                    Some(ahead) if link.as_ref() == Some(next) => Read::Ahead(ahead, size),
                    _ => Read::From(ReadPosition::Next(next.clone()), size),
                }),
                _ => None,
            };
            Some((page, next))
        })
        .boxed()
    }

    async fn fetch(&self, entity: &EntityMetadata, query: &Query) -> Result<FetchPage, SyncError> {
        if query.entity != entity.logical_name {
            return Err(SyncError::Invalid(format!(
                "the query reads '{}' but the entity is '{}'",
                query.entity, entity.logical_name
            )));
        }
        let xml = to_fetchxml(query).map_err(|e| SyncError::Invalid(e.to_string()))?;
        let url = self.url(&entity.entity_set_name, &[("fetchXml", &xml)])?;
        let prefer = "odata.include-annotations=\"Microsoft.Dynamics.CRM.*\"";
        let body = self.transport.get(&url, Some(prefer)).await?;
        let page = decode::page(entity, &body)?;
        drop(body);
        let records = page
            .records
            .into_iter()
            .flat_map(|batch| batch.into_records(&entity.primary_id_attribute))
            .collect();
        let more = page.more_records;
        let paging_cookie = page.paging_cookie.as_deref().and_then(mapping::paging_cookie);
        Ok(FetchPage {
            records,
            more,
            paging_cookie,
        })
    }

    async fn write(
        &self,
        entities: &[EntityMetadata],
        writes: &[ServerWrite],
        atomic: bool,
    ) -> Result<WriteResults, SyncError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let (content_type, body) = write::batch_body(&self.api, entities, writes, atomic)?;
        let url = self.url("$batch", &[])?;
        let request = Request {
            method: reqwest::Method::POST,
            url: &url,
            prefer: (!atomic).then_some("odata.continue-on-error"),
            body: Some((&content_type, &body)),
        };
        let (answer_type, answer) = self.transport.send(&request).await?;
        let answer = String::from_utf8_lossy(&answer);
        let answers = write::parse_batch_response(&answer_type, &answer)?;
        write::results(&answers, writes.len(), atomic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::config::{Credentials, Secret};

    fn connector(url: &str) -> DataverseConnector {
        DataverseConnector::new(DataverseConfig::new(
            url,
            Backend::Crmsync,
            Credentials::Basic {
                user: "u".into(),
                password: Secret::new("p"),
            },
        ))
        .unwrap()
    }

    #[test]
    fn only_links_under_the_web_api_are_followed() {
        let c = connector("https://crm.example.com/acme");
        assert!(
            c.server_link("https://crm.example.com/acme/api/data/v9.2/accounts?$skiptoken=x")
                .is_ok()
        );
        for foreign in [
            "https://evil.example/acme/api/data/v9.2/accounts",
            "http://crm.example.com/acme/api/data/v9.2/accounts",
            "https://crm.example.com:8443/acme/api/data/v9.2/accounts",
            "https://crm.example.com/other/api/data/v9.2/accounts",
            "not a link",
        ] {
            assert!(
                matches!(c.server_link(foreign), Err(SyncError::Protocol(_))),
                "{foreign}"
            );
        }
    }

    #[test]
    fn query_values_are_encoded_and_delta_tokens_decoded() {
        let c = connector("https://crm.example.com/acme");
        let url = c
            .url(
                "accounts",
                &[
                    ("$select", "name,_parentaccountid_value"),
                    ("$deltatoken", "919042!08/22/2017 08:10:44"),
                ],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://crm.example.com/acme/api/data/v9.2/accounts?$select=name,_parentaccountid_value&$deltatoken=919042%2108/22/2017%2008:10:44"
        );
        assert_eq!(delta_token(&url).as_deref(), Some("919042!08/22/2017 08:10:44"));
        let fetch = c
            .url(
                "accounts",
                &[("fetchXml", "<fetch><entity name=\"a+b&c\"/></fetch>")],
            )
            .unwrap();
        assert!(
            fetch
                .as_str()
                .ends_with("fetchXml=%3Cfetch%3E%3Centity%20name%3D%22a%2Bb%26c%22/%3E%3C/fetch%3E"),
            "{fetch}"
        );
    }
}
