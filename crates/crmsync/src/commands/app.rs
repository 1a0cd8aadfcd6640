//! `crmsync app create | list | delete`: the applications of an organization, which obtain
//! bearer tokens with the OAuth 2.0 `client_credentials` grant.

use anyhow::Context;
use crmsync_model::OrgName;
use crmsync_store::Role;
use uuid::Uuid;

use crate::cli::{AppCommand, AppCreate, AppDelete, AppList, AppRole, StoreArgs};
use crate::store;

pub async fn run(args: &StoreArgs, cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Create(create) => create_app(args, create).await,
        AppCommand::List(list) => list_apps(args, list).await,
        AppCommand::Delete(delete) => delete_app(args, delete).await,
    }
}

async fn create_app(args: &StoreArgs, cmd: AppCreate) -> anyhow::Result<()> {
    let org = OrgName::parse(&cmd.org)?;
    let role = match cmd.role {
        AppRole::Admin => Role::Admin,
        AppRole::User => Role::User,
    };
    let catalog = store::open(args).await?;
    let (app, secret) = catalog
        .create_app(&org, &cmd.name, role)
        .await
        .with_context(|| format!("cannot create an application in organization '{org}'"))?;
    println!(
        "Created application '{}' in organization '{org}' with role {}.",
        app.name,
        role.as_str()
    );
    println!("client_id:     {}", app.client_id);
    println!("client_secret: {}", secret.expose());
    println!("Store the secret now: it cannot be shown again.");
    Ok(())
}

async fn list_apps(args: &StoreArgs, cmd: AppList) -> anyhow::Result<()> {
    let org = OrgName::parse(&cmd.org)?;
    let catalog = store::open(args).await?;
    let apps = catalog
        .list_apps(&org)
        .await
        .with_context(|| format!("cannot list the applications of organization '{org}'"))?;
    if apps.is_empty() {
        println!("No applications in organization '{org}'.");
    }
    for app in apps {
        println!(
            "{}\t{}\t{}\tcreated {}",
            app.client_id,
            app.role.as_str(),
            app.name,
            app.created_on.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(())
}

async fn delete_app(args: &StoreArgs, cmd: AppDelete) -> anyhow::Result<()> {
    let org = OrgName::parse(&cmd.org)?;
    let client_id = Uuid::parse_str(cmd.client_id.trim())
        .with_context(|| format!("'{}' is not a client id (a GUID)", cmd.client_id))?;
    let catalog = store::open(args).await?;
    catalog
        .delete_app(&org, client_id)
        .await
        .with_context(|| format!("cannot delete application {client_id}"))?;
    println!("Deleted application {client_id} of organization '{org}'.");
    Ok(())
}
