//! `crmsync demo`: the main job on the embedded store. A server org with sample data and a
//! client org, connected over HTTP exactly as a user would connect them; metadata update,
//! Sync All, changes and deletes on the server (one of them moving a record out of the
//! client's filter), offline changes on the client (one of which the server refuses), a
//! second sync, the cause fixed and the failed transaction retried, and a readable account of
//! each step. Then it keeps
//! serving until stopped (`--no-serve` exits instead).

use anyhow::Context;
use crmsync_model::{AttributeName, EntityName, MetadataChange, OrgName};
use crmsync_sample::SampleGenerator;
use crmsync_server::{AppState, ServerConfig};
use crmsync_store::{Catalog, NewUser, OrgStore, Role};
use crmsync_sync::BackendType;
use crmsync_sync::transactions::{self, TxStatus};
use serde_json::{Value, json};

use super::serve::shutdown_signal;
use super::sync::{connect_org, connector, print_run, run_sync};
use crate::cli::{Demo, StoreArgs};
use crate::keys::MasterKey;
use crate::{sample, store};
use crmsync_sync::service::ConnectRequest;

const SERVER: &str = "demo-server";
const CLIENT: &str = "demo-client";
const USER: &str = "admin@demo.example";
const PASSWORD: &str = "demo-password";
/// The client syncs active contacts only.
const FILTERS: &str = r#"<SyncFilters><fetch><entity name="contact"><filter><condition attribute="statecode" operator="eq" value="0"/></filter></entity></fetch></SyncFilters>"#;

fn step(text: &str) {
    println!("\n== {text}");
}

async fn fresh_orgs(catalog: &dyn Catalog) -> anyhow::Result<()> {
    for name in [SERVER, CLIENT] {
        let org = OrgName::parse(name)?;
        if catalog.org_info(&org).await.is_ok() {
            catalog.delete_org(&org).await?;
            println!("Removed the previous '{name}'.");
        }
    }
    Ok(())
}

/// The Web API of the demo server, used the way any client would use it.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(USER, Some(PASSWORD));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn first(&self, query: &str) -> anyhow::Result<Value> {
        let page = self.send(reqwest::Method::GET, query, None).await?;
        page["value"]
            .get(0)
            .cloned()
            .context("the server has no such record")
    }
}

/// The client's offline transactions by status, and the reason of each failed one.
async fn print_queue(client: &dyn OrgStore) -> anyhow::Result<()> {
    let mut counts = Vec::new();
    for status in TxStatus::ALL {
        let total = transactions::list(client, Some(status), 1, 0).await?.total;
        counts.push(format!("{total} {}", status.label()));
    }
    println!("Offline transactions: {}.", counts.join(", "));
    for t in transactions::list(client, Some(TxStatus::Error), 5, 0)
        .await?
        .transactions
    {
        println!(
            "  Error: {} {} {}: {}",
            t.operation.label(),
            t.entity,
            t.record_id,
            t.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn run(args: &StoreArgs, cmd: Demo) -> anyhow::Result<()> {
    let catalog = store::open(args).await?;
    let key = MasterKey::load(&args.data)?;
    step(&format!(
        "Creating the server organization '{SERVER}' with sample data"
    ));
    fresh_orgs(&*catalog).await?;
    let admin = NewUser {
        email: USER.into(),
        password: PASSWORD.into(),
        role: Role::Admin,
    };
    catalog.create_org(&OrgName::parse(SERVER)?, admin).await?;
    let server_store = catalog.open_org(&OrgName::parse(SERVER)?).await?;
    let report = sample::load(
        &*server_store,
        SampleGenerator::new(1, cmd.records).with_now(chrono::Utc::now()),
        sample::DEFAULT_BATCH_ROWS,
    )
    .await?;
    println!("{} ({} records).", report.counts, report.counts.total());

    let listen = if cmd.no_serve {
        "127.0.0.1:0".to_owned()
    } else {
        cmd.listen.clone()
    };
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let state = AppState::new(
        catalog.clone(),
        ServerConfig {
            token_key: key.derive("bearer-tokens"),
            secrets_key: key.derive(crmsync_server::SECRETS_PURPOSE),
            allow_private_urls: true,
            ..ServerConfig::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crmsync_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let server_url = format!("http://{address}/{SERVER}");
    println!("Serving the Web API at http://{address}/");

    step(&format!(
        "Connecting '{CLIENT}' to {server_url} (metadata update included)"
    ));
    let entities = ["account", "contact", "opportunity"]
        .iter()
        .map(|e| EntityName::parse(e))
        .collect::<Result<Vec<_>, _>>()?;
    let request = ConnectRequest {
        client_org: OrgName::parse(CLIENT)?,
        server_url: server_url.clone(),
        backend: BackendType::Crmsync,
        user: USER.into(),
        password: PASSWORD.into(),
        entities,
        filters_xml: Some(FILTERS.into()),
        write_offline: true,
        allow_private_urls: true,
        registration: None,
    };
    let (conn, changes) = connect_org(&*catalog, &key, request).await?;
    println!(
        "Metadata update: {} change(s); contacts are filtered to active ones.",
        changes.len()
    );
    for line in changes.iter().take(5) {
        println!("  {line}");
    }
    let client = catalog.open_org(&OrgName::parse(CLIENT)?).await?;
    let org = OrgName::parse(CLIENT)?;
    // Sync All of the client, as `crmsync sync` runs it.
    let sync_all = || async {
        run_sync(
            client.clone(),
            connector(&org, &conn, &key)?,
            conn.settings.clone(),
            false,
            Default::default(),
        )
        .await
    };

    step("Sync All");
    let log = sync_all().await?;
    print_run(&log);

    step("Changing the server through its Web API");
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("{server_url}/api/data/v9.2/"),
    };
    let renamed = api.first("accounts?$select=name&$top=1&$orderby=name").await?;
    let id = renamed["accountid"].as_str().context("account id")?;
    api.send(
        reqwest::Method::PATCH,
        &format!("accounts({id})"),
        Some(json!({"name": "Renamed by the demo"})),
    )
    .await?;
    println!(
        "Renamed account {id} ('{}').",
        renamed["name"].as_str().unwrap_or_default()
    );
    let doomed = api
        .first("opportunities?$select=name&$top=1&$orderby=name desc")
        .await?;
    let oid = doomed["opportunityid"].as_str().context("opportunity id")?;
    api.send(reqwest::Method::DELETE, &format!("opportunities({oid})"), None)
        .await?;
    println!("Deleted opportunity {oid}.");
    let leaving = api
        .first("contacts?$select=fullname&$filter=statecode eq 0&$top=1")
        .await?;
    let cid = leaving["contactid"].as_str().context("contact id")?;
    api.send(
        reqwest::Method::PATCH,
        &format!("contacts({cid})"),
        Some(json!({"statecode": 1, "statuscode": 2})),
    )
    .await?;
    println!(
        "Deactivated contact {cid} ('{}'): it leaves the client's filter.",
        leaving["fullname"].as_str().unwrap_or_default()
    );
    api.send(
        reqwest::Method::POST,
        "accounts",
        Some(json!({"name": "Created by the demo", "revenue": 125000.5})),
    )
    .await?;
    println!("Created a new account.");

    step("Changing the client offline through its Web API (WriteOffline is on)");
    let client_api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{address}/{CLIENT}/api/data/v9.2/"),
    };
    let local = client_api
        .first("accounts?$select=name&$top=1&$orderby=name desc")
        .await?;
    let lid = local["accountid"].as_str().context("account id")?;
    client_api
        .send(
            reqwest::Method::PATCH,
            &format!("accounts({lid})"),
            Some(json!({"name": "Renamed offline on the client"})),
        )
        .await?;
    println!("Renamed account {lid} on the client.");
    // The client's administrator allows longer account names than the server does: this
    // create is stored on the client, and the server will refuse it.
    let name = AttributeName::parse("name")?;
    let widen = |max_length| MetadataChange::WidenAttribute {
        entity: EntityName::parse("account").expect("valid"),
        attribute: name.clone(),
        max_length,
    };
    client.apply_metadata(&[widen(250)]).await?;
    let long_name = format!("Offline account with a long name {}", "x".repeat(180));
    client_api
        .send(
            reqwest::Method::POST,
            "accounts",
            Some(json!({"name": long_name})),
        )
        .await?;
    println!("Created an account with a 213-character name on the client (the server allows 160).");
    print_queue(&*client).await?;

    step("Sync All again: the queue is uploaded, then only the server's changes travel");
    let log = sync_all().await?;
    print_run(&log);
    for m in log.messages.iter().filter(|m| m.record_id.is_some()).take(10) {
        println!(
            "  {}: {} {}",
            m.entity.as_deref().unwrap_or("-"),
            m.record_id.map(|r| r.to_string()).unwrap_or_default(),
            m.text
        );
    }
    print_queue(&*client).await?;

    step("Fixing the cause on the server, Set all to Pending, and Sync All");
    server_store.apply_metadata(&[widen(250)]).await?;
    println!("The server's account name now allows 250 characters.");
    let retried = transactions::set_all_pending(&*client).await?;
    println!("{retried} transaction(s) set from Error to Pending.");
    let log = sync_all().await?;
    print_run(&log);
    print_queue(&*client).await?;
    println!("\nThe logs of every run: crmsync logs {CLIENT}");
    println!("The offline transactions: crmsync transactions list {CLIENT}");

    if cmd.no_serve {
        let _ = stop.send(());
        let _ = server.await;
        return Ok(());
    }
    println!(
        "\nServing http://{address}/ (organizations '{SERVER}' and '{CLIENT}', user {USER} / {PASSWORD}). Ctrl-C stops."
    );
    shutdown_signal().await;
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
