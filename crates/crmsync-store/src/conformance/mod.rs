//! The conformance suite: one set of behaviours every storage backend must show, written
//! once and run by each backend's tests through [`conformance_suite!`](crate::conformance_suite).
//!
//! A backend provides a [`TestBackend`]: isolated storage per test, and any number of
//! catalog instances on that storage (to prove that separate processes see each other's
//! changes). Tests assert on what a user of the store would check: records read back,
//! errors naming the culprit, versions and changes in order.

mod bulk;
mod catalog;
mod changes;
mod concurrency;
mod metadata;
mod query;
mod records;
mod work;
mod work_start;

use std::sync::Arc;

use async_trait::async_trait;
use crmsync_model::{
    AttributeMetadata, AttributeType, EntityMetadata, EntityName, MetadataChange, OptionSet, OrgName,
};

use crate::{Catalog, NewUser, OrgStore, Role};

pub use bulk::*;
pub use catalog::*;
pub use changes::*;
pub use concurrency::*;
pub use metadata::*;
pub use query::*;
pub use records::*;
pub use work::*;
pub use work_start::*;

#[async_trait]
pub trait TestBackend: Send + Sync + Sized + 'static {
    /// New, empty, isolated storage.
    async fn fresh() -> Self;
    /// A new catalog instance on this storage (as another process would open it).
    async fn catalog(&self) -> Arc<dyn Catalog>;
}

/// Generates one `#[tokio::test]` per behaviour of the suite for a [`TestBackend`].
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ty) => {
        $crate::conformance_suite!(@tests $backend;
            catalog_creates_lists_and_deletes_orgs,
            org_names_are_unique_and_missing_orgs_are_not_found,
            users_are_unique_per_org_case_insensitively,
            bad_user_input_is_refused,
            apps_are_created_found_listed_and_deleted,
            app_secrets_are_stored_only_as_hashes,
            apps_of_another_org_are_invisible,
            apps_of_unknown_orgs_are_not_found,
            deleting_an_org_deletes_its_apps,
            metadata_changes_create_and_alter_tables,
            failed_metadata_change_applies_nothing,
            metadata_change_is_seen_by_another_instance,
            values_of_every_type_round_trip_exactly,
            activities_are_kept_under_activityid,
            nulls_round_trip_for_every_type,
            invalid_values_are_refused_and_store_nothing,
            partial_update_changes_only_given_attributes,
            create_only_conflicts_and_update_only_requires_existing,
            upsert_creates_then_updates_and_counts_them,
            write_sets_are_atomic,
            hostile_values_and_names_are_stored_verbatim,
            list_pages_through_records_by_id,
            bulk_upsert_spans_many_statements,
            upserts_set_lookups_of_existing_records,
            bulk_update_spans_many_statements,
            state_is_committed_with_records,
            expected_state_guards_the_whole_set,
            bulk_writes_commit_together_or_not_at_all,
            outcomes_count_rows_per_op_and_state_lists_by_prefix,
            delete_leaves_a_tombstone_reported_by_changes,
            changes_are_in_version_order_and_paged,
            changes_from_zero_return_live_records_only,
            changes_of_an_unknown_entity_fail_and_reads_go_on,
            purged_tombstones_expire_older_tokens,
            deletes_during_an_initial_read_are_reported,
            concurrent_writers_get_unique_versions_visible_in_order,
            orgs_are_isolated_from_each_other,
            query_fetchxml_operators_match_eval_on_stored_rows,
            query_odata_filters_match_eval_on_stored_rows,
            query_text_folds_ascii_letters_only,
            query_hostile_filter_value_is_only_data,
            query_inner_link_without_columns_filters_parents_once,
            query_outer_link_returns_columns_and_keeps_unmatched_rows,
            query_unknown_attributes_and_aliases_are_errors_naming_them,
            query_orders_text_case_insensitively_with_nulls_first_and_ties_by_id,
            query_keyset_pages_visit_every_row_once_in_id_order,
            query_offset_pages_visit_every_row_once_in_custom_order,
            query_top_caps_rows_over_all_pages,
            query_total_counts_all_matches_ignoring_paging_and_top,
            query_in_lists_longer_than_parameter_limits_work,
            query_sql_matches_eval_for_random_filters,
            work_is_enqueued_read_listed_and_deleted_with_its_org,
            work_for_a_new_org_is_queued_before_the_org_exists,
            claims_take_due_items_earliest_first_under_a_lease,
            an_org_never_has_two_running_items,
            an_expired_lease_is_taken_over_and_the_old_owner_is_refused,
            renewing_a_lease_keeps_the_item_and_records_progress,
            failed_attempts_retry_later_or_fail_for_good,
            work_counts_cover_every_status,
            concurrent_claimers_run_each_item_once_and_each_org_alone,
            start_runs_work_of_an_idle_org_at_once,
            start_is_refused_while_a_claim_holds_the_org,
            claims_skip_an_org_held_by_a_start,
            an_expired_started_item_is_taken_over_by_a_claim,
            concurrent_starts_and_claims_never_hold_one_org_twice,
        );
    };
    (@tests $backend:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = <$backend as $crate::conformance::TestBackend>::fresh().await;
                $crate::conformance::$name(&backend).await;
            }
        )*
    };
}

pub(crate) fn org(name: &str) -> OrgName {
    OrgName::parse(name).expect("test org names are valid")
}

pub(crate) fn admin() -> NewUser {
    NewUser {
        email: "Admin@Example.com".into(),
        password: "s3cret-passw0rd".into(),
        role: Role::Admin,
    }
}

/// Creates an org with the test entity `thing` and returns its store.
pub(crate) async fn org_with_thing(catalog: &dyn Catalog, name: &str) -> Arc<dyn OrgStore> {
    catalog.create_org(&org(name), admin()).await.expect("create org");
    let store = catalog.open_org(&org(name)).await.expect("open org");
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: thing() }])
        .await
        .expect("create entity");
    store
}

pub(crate) fn entity_name(s: &str) -> EntityName {
    EntityName::parse(s).expect("valid entity name")
}

/// An entity with one attribute of every type.
pub(crate) fn thing() -> EntityMetadata {
    let attr = |n: &str, t| AttributeMetadata::new(n, t).expect("valid attribute");
    let mut e = EntityMetadata::new("thing", "things", "name").expect("valid entity");
    for a in [
        attr("memo", AttributeType::Memo { max_length: 100_000 }),
        attr("short", AttributeType::String { max_length: 5 }),
        attr(
            "count",
            AttributeType::Integer {
                min: -1000,
                max: 1000,
            },
        ),
        attr("big", AttributeType::BigInt),
        attr("ratio", AttributeType::Decimal { precision: 10 }),
        attr("amount", AttributeType::Money { precision: 4 }),
        attr("score", AttributeType::Double),
        attr("flag", AttributeType::Boolean),
        attr("when", AttributeType::DateTime),
        attr("ref", AttributeType::Uniqueidentifier),
        attr(
            "parentid",
            AttributeType::Lookup {
                targets: vec![entity_name("thing"), entity_name("other")],
            },
        ),
        attr(
            "kind",
            AttributeType::Picklist {
                options: OptionSet::new([(1, "One"), (2, "Two"), (100_000_000, "Custom")]),
            },
        ),
    ] {
        e = e.with_attribute(a).expect("valid attribute");
    }
    e
}
