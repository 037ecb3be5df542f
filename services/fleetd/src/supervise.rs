//! Supervision of a running fleetd's services. Each service is spawned with a name on one
//! `TaskTracker`, and its end is judged: a service that returns an error, panics, or returns
//! while no shutdown was asked for has failed. The first failure is kept and cancels the
//! app's shutdown token, so the other services stop as on a signal; the binary then exits 1
//! with one line naming the service and why (README, exit codes).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A service that ended while nothing asked it to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {name} stopped: {reason}")]
pub struct ServiceFailed {
    /// The service's name (`ingest`, `web server`, …).
    pub name: &'static str,
    /// Its error, its panic, or that it returned of itself.
    pub reason: String,
}

/// What a service's return value says about its end: `None` when it just returned, the
/// reason when it failed.
pub trait Outcome {
    fn failure(self) -> Option<String>;
}

impl Outcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<T, E: Into<anyhow::Error>> Outcome for Result<T, E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| describe(&e.into()))
    }
}

/// An error and its causes on one line, leaving out a cause whose text the line already
/// holds (an error that prints its source and also reports it as its source).
fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The services of one app: where they are spawned, the token that stops them all, and the
/// first failure.
#[derive(Clone)]
pub struct Services {
    tasks: TaskTracker,
    shutdown: CancellationToken,
    failed: Arc<OnceLock<ServiceFailed>>,
}

impl Services {
    /// Services stopped by `shutdown`, which a failure also cancels.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self { tasks: TaskTracker::new(), shutdown, failed: Arc::default() }
    }

    /// The tracker every task of the app is spawned on (a service's helper tasks too), so
    /// that shutdown waits for all of them.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// The app's shutdown token.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Spawns the service `name`. It must run until the shutdown token is cancelled; ending
    /// any other way fails the app.
    pub fn spawn<F>(&self, name: &'static str, service: F)
    where
        F: Future + Send + 'static,
        F::Output: Outcome,
    {
        let me = self.clone();
        self.tasks.spawn(async move {
            let reason = match AssertUnwindSafe(service).catch_unwind().await {
                Ok(outcome) => match outcome.failure() {
                    Some(error) => Some(error),
                    None if me.shutdown.is_cancelled() => None,
                    None => Some("it returned while no shutdown was asked for".to_owned()),
                },
                Err(panic) => Some(format!("it panicked: {}", panic_message(panic.as_ref()))),
            };
            if let Some(reason) = reason {
                me.fail(name, reason);
            }
        });
    }

    /// Records a failure (the first one is kept) and stops every service.
    pub fn fail(&self, name: &'static str, reason: String) {
        tracing::error!(service = name, reason = %reason, "a service stopped unexpectedly; fleetd stops");
        let _ = self.failed.set(ServiceFailed { name, reason });
        self.shutdown.cancel();
    }

    /// The first service that failed, if one did.
    pub fn failure(&self) -> Option<&ServiceFailed> {
        self.failed.get()
    }
}

/// A panic's message, when it has one (`panic!` with a string, formatted or not).
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "no message"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn settled(services: &Services) {
        services.tasks().close();
        tokio::time::timeout(Duration::from_secs(5), services.tasks().wait()).await.expect("every service ended");
    }

    #[tokio::test]
    async fn services_that_stop_on_shutdown_end_clean() {
        let services = Services::new(CancellationToken::new());
        let stop = services.shutdown().clone();
        services.spawn("quiet", async move { stop.cancelled().await });
        let stop = services.shutdown().clone();
        services.spawn("fallible", async move {
            stop.cancelled().await;
            Ok::<_, std::io::Error>(())
        });
        services.shutdown().cancel();
        settled(&services).await;
        assert_eq!(services.failure(), None);
    }

    #[tokio::test]
    async fn an_error_stops_the_others_and_is_named() {
        let services = Services::new(CancellationToken::new());
        let stop = services.shutdown().clone();
        services.spawn("web server", async move { stop.cancelled().await });
        services.spawn("ingest", async { Err::<(), _>(anyhow::anyhow!("no such table: vehicles")) });
        settled(&services).await;
        assert!(services.shutdown().is_cancelled(), "the failure stopped the other services");
        let failed = services.failure().expect("a failure");
        assert_eq!(failed.to_string(), "service ingest stopped: no such table: vehicles");
    }

    #[test]
    fn a_reason_tells_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("storage: {0}")]
        struct Wrapped(#[from] std::io::Error);
        let inner = Err::<(), _>(Wrapped(std::io::Error::other("no such table: vehicles")));
        assert_eq!(inner.failure().as_deref(), Some("storage: no such table: vehicles"));
        let context = Err::<(), _>(anyhow::Error::from(std::io::Error::other("refused")).context("connecting"));
        assert_eq!(context.failure().as_deref(), Some("connecting: refused"));
    }

    #[tokio::test]
    async fn returning_before_shutdown_is_a_failure() {
        let services = Services::new(CancellationToken::new());
        services.spawn("deriver", async {});
        settled(&services).await;
        let failed = services.failure().expect("a failure");
        assert_eq!(failed.name, "deriver");
        assert!(failed.reason.contains("returned while no shutdown was asked for"), "{failed}");
    }

    #[tokio::test]
    async fn a_panic_is_a_failure_with_its_message() {
        let services = Services::new(CancellationToken::new());
        services.spawn("dispatcher", async {
            let n: usize = "x".len();
            if n == 1 {
                panic!("solver broke on {n} car");
            }
        });
        settled(&services).await;
        let failed = services.failure().expect("a failure");
        assert_eq!(failed.name, "dispatcher");
        assert_eq!(failed.reason, "it panicked: solver broke on 1 car");
    }

    #[tokio::test]
    async fn the_first_failure_is_kept() {
        let services = Services::new(CancellationToken::new());
        services.spawn("relay", async { Err::<(), _>(std::io::Error::other("first")) });
        settled(&services).await;
        let stop = services.shutdown().clone();
        // Ends with an error after the first failure stopped everything.
        let late = Services { tasks: TaskTracker::new(), ..services.clone() };
        late.spawn("ingest", async move {
            stop.cancelled().await;
            Err::<(), _>(std::io::Error::other("second"))
        });
        settled(&late).await;
        assert_eq!(services.failure().map(|f| f.name), Some("relay"));
    }
}
