//! Asynchronous jobs of the sync webservice (connect, sync, metadata update): started with
//! 202, polled with `GET jobs/{id}`. Jobs live in this process's memory; a restart forgets
//! the ones in flight (the scheduler makes them durable).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    PartiallySucceeded,
    Failed,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct JobProgress {
    pub phase: String,
    pub entity: Option<String>,
    pub done: u64,
    pub total: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: Uuid,
    pub kind: &'static str,
    #[serde(skip)]
    pub org: String,
    /// Readable by whoever holds its id (a registration's job, before the org has an admin).
    #[serde(skip)]
    pub open: bool,
    pub status: JobStatus,
    pub progress: JobProgress,
    pub run_id: Option<Uuid>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub created: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
}

/// Most jobs remembered; the oldest finished ones are forgotten first.
const MAX_JOBS: usize = 10_000;

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<Uuid, Job>>,
}

impl Jobs {
    pub fn create(&self, kind: &'static str, org: &str) -> Uuid {
        let id = Uuid::new_v4();
        let job = Job {
            id,
            kind,
            org: org.to_owned(),
            open: false,
            status: JobStatus::Queued,
            progress: JobProgress::default(),
            run_id: None,
            result: None,
            error: None,
            created: Utc::now(),
            ended: None,
        };
        let mut jobs = self.jobs.lock().expect("jobs lock");
        if jobs.len() >= MAX_JOBS {
            let mut finished: Vec<(DateTime<Utc>, Uuid)> = jobs
                .values()
                .filter(|j| j.ended.is_some())
                .map(|j| (j.created, j.id))
                .collect();
            finished.sort();
            for (_, old) in finished.into_iter().take(MAX_JOBS / 10) {
                jobs.remove(&old);
            }
        }
        jobs.insert(id, job);
        id
    }

    pub fn update(&self, id: Uuid, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.jobs.lock().expect("jobs lock").get_mut(&id) {
            f(job);
        }
    }

    /// The job, if it belongs to `org`.
    pub fn get(&self, id: Uuid, org: &str) -> Option<Job> {
        self.jobs
            .lock()
            .expect("jobs lock")
            .get(&id)
            .filter(|j| j.org == org)
            .cloned()
    }

    /// Runs `work` in the background, recording its outcome on the job.
    pub fn spawn<F>(self: &Arc<Self>, id: Uuid, work: F)
    where
        F: std::future::Future<Output = Result<(JobStatus, Value), String>> + Send + 'static,
    {
        let jobs = self.clone();
        jobs.update(id, |j| j.status = JobStatus::Running);
        tokio::spawn(async move {
            let outcome = work.await;
            jobs.update(id, |j| {
                j.ended = Some(Utc::now());
                match outcome {
                    Ok((status, result)) => {
                        j.status = status;
                        j.result = Some(result);
                    }
                    Err(error) => {
                        j.status = JobStatus::Failed;
                        j.error = Some(error);
                    }
                }
            });
        });
    }
}
