//! The engine's events on their way to the dispatcher: a bounded queue allocated once (std's
//! array channel: no allocation per event, no wake-up per event), which the dispatcher drains
//! in batches. A sender that finds it full waits for room: the engine slows down rather than
//! lose what it measured.

use std::sync::mpsc;
use std::time::Duration;

use super::LoadEvent;

/// How long a sender that found the queue full waits before trying again (the dispatcher
/// drains it every few milliseconds).
const ROOM_WAIT: Duration = Duration::from_millis(1);

/// How often a receiver waiting for an event looks again.
const LOOK_EVERY: Duration = Duration::from_millis(1);

/// The engine's side.
#[derive(Clone, Debug)]
pub struct EventSender(mpsc::SyncSender<LoadEvent>);

/// The dispatcher's side.
#[derive(Debug)]
pub struct EventReceiver(mpsc::Receiver<LoadEvent>);

/// The dispatcher is gone: nobody reads events any more.
#[derive(Debug)]
pub struct Closed;

/// Why nothing was received.
#[derive(Debug, PartialEq, Eq)]
pub enum Empty {
    /// Nothing queued now.
    Now,
    /// Nothing queued, and every sender is gone.
    Closed,
}

/// A queue of `capacity` events.
pub fn channel(capacity: usize) -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::sync_channel(capacity);
    (EventSender(tx), EventReceiver(rx))
}

impl EventSender {
    /// Queues `event`, waiting for room while the queue is full.
    pub async fn send(&self, event: LoadEvent) -> Result<(), Closed> {
        let mut event = event;
        loop {
            match self.0.try_send(event) {
                Ok(()) => return Ok(()),
                Err(mpsc::TrySendError::Full(back)) => {
                    event = back;
                    tokio::time::sleep(ROOM_WAIT).await;
                }
                Err(mpsc::TrySendError::Disconnected(_)) => return Err(Closed),
            }
        }
    }
}

impl EventReceiver {
    /// The next queued event, without waiting.
    pub fn try_recv(&mut self) -> Result<LoadEvent, Empty> {
        self.0.try_recv().map_err(|e| match e {
            mpsc::TryRecvError::Empty => Empty::Now,
            mpsc::TryRecvError::Disconnected => Empty::Closed,
        })
    }

    /// The next event; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<LoadEvent> {
        loop {
            match self.try_recv() {
                Ok(event) => return Some(event),
                Err(Empty::Now) => tokio::time::sleep(LOOK_EVERY).await,
                Err(Empty::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(id: u64) -> LoadEvent {
        LoadEvent::Settled { id }
    }

    /// A full queue holds the sender back until the receiver makes room; nothing is lost and
    /// the order is kept; the receiver sees the end once the senders are gone.
    #[tokio::test]
    async fn a_full_queue_holds_the_sender_back_and_loses_nothing() {
        let (tx, mut rx) = channel(2);
        let sender = tokio::spawn(async move {
            for id in 0..5 {
                tx.send(settled(id)).await.expect("open");
            }
        });
        let mut got = Vec::new();
        while let Some(event) = rx.recv().await {
            got.push(event);
        }
        sender.await.expect("sender");
        assert_eq!(got, (0..5).map(settled).collect::<Vec<_>>());
        assert_eq!(rx.try_recv(), Err(Empty::Closed));
    }

    #[tokio::test]
    async fn a_sender_without_receiver_is_told() {
        let (tx, rx) = channel(1);
        drop(rx);
        assert!(tx.send(settled(1)).await.is_err());
    }
}
