//! Request timeouts on one timer per user. A timer per request (`tokio::time::timeout`) is
//! registered in the runtime's timer wheel and removed again for every request, under a lock;
//! a user's requests run one after another, so one timer serves them all: armed at the
//! deadline of the request that armed it, it stays armed while later requests (with later
//! deadlines) run, and when it fires before the running request's own deadline it is simply
//! re-armed there. A request with an earlier deadline than the armed one re-arms it earlier.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use tokio::time::Sleep;

/// One user's request timer.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    timer: Option<Pin<Box<Sleep>>>,
    /// When the timer fires.
    armed: Option<Instant>,
}

impl Deadlines {
    /// Runs `work` until it completes (`Some`) or `deadline` passes (`None`).
    pub(super) async fn run<F: Future>(
        &mut self,
        deadline: Instant,
        mut work: Pin<&mut F>,
    ) -> Option<F::Output> {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
        let armed = self.armed.get_or_insert(deadline);
        if *armed > deadline {
            timer.as_mut().reset(deadline.into());
            *armed = deadline;
        }
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            while timer.as_mut().poll(cx).is_ready() {
                if *armed >= deadline {
                    return Poll::Ready(None);
                }
                // Armed by an earlier request: on to this one's deadline.
                timer.as_mut().reset(deadline.into());
                *armed = deadline;
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Work that never completes.
    fn never() -> std::future::Pending<()> {
        std::future::pending()
    }

    #[tokio::test]
    async fn work_that_outlives_its_deadline_is_cut_there() {
        let mut deadlines = Deadlines::default();
        let start = Instant::now();
        let work = std::pin::pin!(never());
        let cut = deadlines.run(start + Duration::from_millis(20), work).await;
        assert!(cut.is_none());
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    /// A timer armed far away by one request does not hold back the nearer deadline of the
    /// next; a timer that fired for an earlier request does not cut a later one short.
    #[tokio::test]
    async fn each_request_gets_its_own_deadline_from_the_one_timer() {
        let mut deadlines = Deadlines::default();
        let far = Instant::now() + Duration::from_secs(600);
        let done = deadlines.run(far, std::pin::pin!(async { 7 })).await;
        assert_eq!(done, Some(7));
        // Nearer than the armed one: cut at its own deadline, not after ten minutes.
        let near = Instant::now() + Duration::from_millis(20);
        let cut = tokio::time::timeout(
            Duration::from_secs(60),
            deadlines.run(near, std::pin::pin!(never())),
        )
        .await
        .expect("cut at its own deadline");
        assert!(cut.is_none());
        // The timer fired at that deadline; the next request's is later and it completes.
        let later = Instant::now() + Duration::from_secs(600);
        let slow = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            8
        };
        let done = deadlines.run(later, std::pin::pin!(slow)).await;
        assert_eq!(done, Some(8));
    }
}
