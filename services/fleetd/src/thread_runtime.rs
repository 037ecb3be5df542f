//! A tokio runtime on a thread of its own, for a pipeline whose latency must not depend on how
//! busy the main runtime is.
//!
//! The TCP gateways' ingest pipeline (batcher, commits, state writer) runs on one. Under load
//! the main runtime's two workers each hold thousands of runnable connection tasks; a task
//! woken there (the batcher by a frame, a commit by its database socket) waits its turn
//! behind all of them, and a report crosses several such hops before it is answered. On its
//! own thread the pipeline has a handful of tasks, and the operating system's scheduler gives
//! a mostly idle thread the core as soon as it wakes.

use std::future::Future;
use std::io;

use tokio::runtime::{Builder, Handle, Runtime};

/// A one-thread runtime, shut down (without waiting for its tasks) when dropped, which may be
/// inside another runtime.
pub(crate) struct ThreadRuntime(Option<Runtime>);

impl ThreadRuntime {
    /// Starts the runtime; its thread carries `name`.
    pub(crate) fn new(name: &str) -> io::Result<Self> {
        let runtime = Builder::new_multi_thread().worker_threads(1).thread_name(name).enable_all().build()?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> &Handle {
        self.0.as_ref().expect("the runtime is only taken when dropped").handle()
    }

    /// Runs `task` on this runtime and waits for it from any other; a panic in it goes on
    /// in the caller, as if the task had run there.
    pub(crate) async fn run<F>(&self, task: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle().spawn(task).await {
            Ok(output) => output,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled: only when the runtime shuts down, which takes `self`.
                Err(e) => unreachable!("a task of a live runtime was cancelled: {e}"),
            },
        }
    }
}

impl Drop for ThreadRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_a_task_on_its_own_thread_and_returns_its_output() {
        let runtime = ThreadRuntime::new("test-apart").unwrap();
        let name = runtime.run(async { std::thread::current().name().map(str::to_owned) }).await;
        assert_eq!(name.as_deref(), Some("test-apart"));
    }

    #[tokio::test]
    async fn a_panic_in_the_task_goes_on_in_the_caller() {
        let runtime = ThreadRuntime::new("test-apart").unwrap();
        let caught = tokio::spawn(async move { runtime.run(async { panic!("boom") }).await }).await;
        let panic = caught.unwrap_err().into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
    }
}
