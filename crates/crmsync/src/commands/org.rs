//! `crmsync org create | list`.

use anyhow::Context;
use crmsync_model::OrgName;
use crmsync_sample::SampleGenerator;
use crmsync_store::{NewUser, Role};

use crate::cli::{OrgCommand, OrgCreate, StoreArgs};
use crate::{sample, store};

pub async fn run(args: &StoreArgs, cmd: OrgCommand) -> anyhow::Result<()> {
    match cmd {
        OrgCommand::Create(create) => create_org(args, create).await,
        OrgCommand::List => list(args).await,
    }
}

async fn create_org(args: &StoreArgs, cmd: OrgCreate) -> anyhow::Result<()> {
    let name = OrgName::parse(&cmd.name)?;
    let catalog = store::open(args).await?;
    let admin = NewUser {
        email: cmd.admin_email.clone(),
        password: cmd.admin_password.clone(),
        role: Role::Admin,
    };
    catalog
        .create_org(&name, admin)
        .await
        .with_context(|| format!("cannot create organization '{name}'"))?;
    println!(
        "Created organization '{name}' with administrator {}.",
        cmd.admin_email.trim().to_lowercase()
    );
    if cmd.sample.is_some() {
        let org = catalog.open_org(&name).await?;
        let generator = SampleGenerator::new(cmd.seed, cmd.records);
        let report = sample::load(&*org, generator, cmd.batch_size).await?;
        let total = report.counts.total();
        let secs = report.elapsed.as_secs_f64();
        println!(
            "Sample data: {} ({total} records in {secs:.1} s, {:.0} records/s).",
            report.counts,
            total as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

async fn list(args: &StoreArgs) -> anyhow::Result<()> {
    let catalog = store::open(args).await?;
    let orgs = catalog.list_orgs().await?;
    if orgs.is_empty() {
        println!("No organizations.");
    }
    for org in orgs {
        println!(
            "{}\tcreated {}",
            org.name,
            org.created_on.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(())
}
