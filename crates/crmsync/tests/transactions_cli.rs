//! `crmsync transactions …` on a client org's queue: listing by status, the transitions an
//! administrator may make, and clear refusals of the others.

use crate::common;
use common::{crmsync, failure as stderr_of_failure, stdout};

use crmsync_model::{AttributeName, EntityName, MetadataChange, OrgName, Value};
use crmsync_store::Catalog;
use crmsync_store_sqlite::SqliteCatalog;
use crmsync_sync::transactions::{self, ClientChange, Operation, Outcome, TxStatus};

#[tokio::test]
async fn transactions_are_listed_and_steered_by_status() {
    let dir = tempfile::tempdir().unwrap();
    crmsync(dir.path())
        .args(["org", "create", "field", "--admin-email", "a@field.example"])
        .args(["--admin-password", "password-1"])
        .assert()
        .success();
    assert!(stdout(crmsync(dir.path()).args(["transactions", "list", "field"])).contains("No transactions."));

    // Three queued changes; the upload set the second to Error and processed the third.
    let catalog = SqliteCatalog::open(dir.path()).await.unwrap();
    let store = catalog.open_org(&OrgName::parse("field").unwrap()).await.unwrap();
    let account = crmsync_sample::crm_entities().into_iter().next().unwrap();
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: account }])
        .await
        .unwrap();
    let changes: Vec<ClientChange> = (0..3)
        .map(|i| ClientChange {
            entity: EntityName::parse("account").unwrap(),
            id: crmsync_model::RecordId::new_random(),
            operation: Operation::Create,
            values: [(
                AttributeName::parse("name").unwrap(),
                Value::String(format!("A{i}")),
            )]
            .into_iter()
            .collect(),
        })
        .collect();
    store
        .write(transactions::queue(&*store, &changes).await.unwrap())
        .await
        .unwrap();
    let queued = transactions::list(&*store, None, 10, 0)
        .await
        .unwrap()
        .transactions;
    let outcome = |t: &transactions::Transaction, status, error: Option<&str>| Outcome {
        id: t.id,
        status,
        attempts: 1,
        error: error.map(str::to_owned),
    };
    store
        .write(transactions::outcome_writes(&[
            outcome(
                &queued[1],
                TxStatus::Error,
                Some("the server refused it (400): too long"),
            ),
            outcome(&queued[2], TxStatus::Processed, None),
        ]))
        .await
        .unwrap();
    let (pending, failed, processed) = (
        queued[0].id.to_string(),
        queued[1].id.to_string(),
        queued[2].id.to_string(),
    );

    let all = stdout(crmsync(dir.path()).args(["transactions", "list", "field"]));
    assert!(all.contains("1–3 of 3"), "{all}");
    let errors = stdout(crmsync(dir.path()).args(["transactions", "list", "field", "--status", "error"]));
    assert!(
        errors.contains(&failed) && errors.contains("too long") && !errors.contains(&pending),
        "{errors}"
    );

    // Processed is final; unknown and malformed ids are named.
    let why =
        stderr_of_failure(crmsync(dir.path()).args(["transactions", "set-pending", "field", &processed]));
    assert!(why.contains("Processed is final"), "{why}");
    let why = stderr_of_failure(crmsync(dir.path()).args([
        "transactions",
        "archive",
        "field",
        "00000000-0000-4000-8000-000000000000",
    ]));
    assert!(why.contains("was not found"), "{why}");
    let why = stderr_of_failure(crmsync(dir.path()).args(["transactions", "archive", "field", "nope"]));
    assert!(why.contains("not a transaction id"), "{why}");
    let why =
        stderr_of_failure(crmsync(dir.path()).args(["transactions", "list", "field", "--status", "done"]));
    assert!(why.contains("done"), "{why}");

    // Archive the Pending one, then Set all to Pending takes the Error one.
    assert!(
        stdout(crmsync(dir.path()).args(["transactions", "archive", "field", &pending]))
            .contains("1 transaction(s) set to Archived")
    );
    assert!(
        stdout(crmsync(dir.path()).args(["transactions", "set-all-pending", "field"]))
            .contains("1 transaction(s) set from Error to Pending")
    );
    let now_pending =
        stdout(crmsync(dir.path()).args(["transactions", "list", "field", "--status", "pending"]));
    assert!(
        now_pending.contains(&failed) && !now_pending.contains(&pending),
        "{now_pending}"
    );
    // Set to Pending brings the archived one back.
    assert!(
        stdout(crmsync(dir.path()).args(["transactions", "set-pending", "field", &pending]))
            .contains("1 transaction(s) set to Pending")
    );
}
