//! The read side: a dedicated thread owning its own connection runs the queries of HTTP
//! handlers one at a time, so that a slow or unreachable database never blocks the
//! runtime's threads; handlers await the answer with a deadline.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use super::open_store;
use super::settings::Backend;
use super::store::{Store, StoreError};

/// Queries waiting for the reader thread at most.
const WAITING: usize = 64;

/// How long a query may take, waiting included.
const DEADLINE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce(Result<&mut dyn Store, StoreError>) + Send>;

/// Runs queries on the history's reader thread.
#[derive(Debug, Clone)]
pub struct Reader {
    jobs: SyncSender<Job>,
    location: String,
}

impl Reader {
    /// Starts the reader thread for `backend` (opened on the first query, reopened after
    /// an outage).
    pub(super) fn start(backend: Backend, location: String) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(WAITING);
        std::thread::Builder::new()
            .name("roster-history-read".to_owned())
            .spawn(move || {
                let mut store: Option<Box<dyn Store>> = None;
                for job in queue {
                    if store.is_none() {
                        match open_store(&backend) {
                            Ok(opened) => store = opened,
                            Err(e) => {
                                job(Err(e));
                                continue;
                            }
                        }
                    }
                    match store.as_mut() {
                        Some(opened) => job(Ok(opened.as_mut())),
                        None => continue,
                    }
                }
            })?;
        Ok(Self { jobs, location })
    }

    /// Runs `query` on the reader thread and returns its answer.
    ///
    /// # Errors
    ///
    /// The query's error; [`StoreError::Unavailable`] if the reader is busy or the
    /// answer takes longer than ten seconds.
    pub async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = answer.send(store.and_then(query));
        });
        let busy = |reason: &str| StoreError::Unavailable {
            location: self.location.clone(),
            reason: reason.to_owned(),
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(busy("too many history queries waiting")),
            Err(TrySendError::Disconnected(_)) => return Err(busy("the history reader stopped")),
        }
        match tokio::time::timeout(DEADLINE, answered).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(busy("the history reader stopped")),
            Err(_) => Err(busy("the query took longer than 10 s")),
        }
    }
}
