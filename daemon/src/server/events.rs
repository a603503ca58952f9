//! A connection's event subscription: `events.subscribe` starts it (the dispatcher calls
//! [`Subscription::subscribe`] through [`crate::rpc::Session`]), and it forwards every event
//! as a notification line until the connection ends. A client that does not read its events
//! loses them (and is told how many), never the daemon's memory.

use std::sync::{Arc, Mutex};

use oathkey_protocol::jsonrpc::Notification;
use oathkey_protocol::types::{Event, method};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::service::Service;

/// One connection's subscription (none until asked for).
#[derive(Debug)]
pub struct Subscription {
    service: Arc<Service>,
    out: mpsc::Sender<String>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Subscription {
    /// No subscription yet, for a connection writing its lines to `out`.
    pub fn new(service: Arc<Service>, out: mpsc::Sender<String>) -> Arc<Self> {
        Arc::new(Self {
            service,
            out,
            task: Mutex::new(None),
        })
    }

    /// Whether events are being forwarded.
    pub fn active(&self) -> bool {
        self.task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Stops forwarding (the connection ended).
    pub fn end(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

impl crate::rpc::Session for Subscription {
    fn subscribe(&self) {
        let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if task.is_none() {
            *task = Some(tokio::spawn(forward(
                self.service.subscribe(),
                self.out.clone(),
            )));
        }
    }
}

fn line_of(event: &Event) -> Option<String> {
    let note = Notification {
        jsonrpc: "2.0".into(),
        method: method::EVENT.into(),
        params: serde_json::to_value(event).unwrap_or(Value::Null),
    };
    oathkey_protocol::codec::encode_line(&note).ok()
}

async fn forward(mut rx: broadcast::Receiver<Event>, out: mpsc::Sender<String>) {
    let mut lost: u64 = 0;
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                lost += n;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if lost > 0
            && let Some(l) = line_of(&Event::EventsLost { count: lost })
            && out.try_send(l).is_ok()
        {
            lost = 0;
        }
        let Some(line) = line_of(&event) else {
            continue;
        };
        match out.try_send(line) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => lost += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
