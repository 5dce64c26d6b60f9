//! What the SQLite outbound store keeps in memory in front of its database. The store is
//! the only writer of that database, so it sees every change, and each copy here stays
//! true for a reason of its own:
//! - the subscriptions, read by every publish and every delivery: loaded whole, dropped
//!   after each committed change; a generation count stops a read that raced a change from
//!   caching what it read before the change;
//! - recent events: immutable once stored, so a copy is never stale;
//! - deliveries a publish stored and nothing has saved since: their first attempt reads
//!   them moments later; every save drops the copy first, so what is left is what a
//!   publish committed;
//! - claims on deliveries being attempted ([`Claims`]): a claim only has to outlive the
//!   attempt, and this process is the only one attempting these deliveries (the data
//!   directory is locked), so memory is where they belong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use quick_cache::sync::Cache;

use crate::domain::outbound::SubscriptionId;
use crate::domain::outbound::{Delivery, Event, EventId, OutboundDeliveryId, Subscription};

/// Recent events kept.
const EVENTS: usize = 4096;
/// Fresh deliveries kept (~0.5 KiB each): a backlog of up to this many waiting for their
/// first attempt is read from memory.
const DELIVERIES: usize = 64 * 1024;

/// Claims kept before released and expired ones are dropped. Only a released claim's
/// check against stale copies is lost then, and here no stale copy races a save: the local
/// queue hands a delivery's one message to one consumer at a time.
const CLAIMS: usize = 4096;

/// Claims on deliveries, for `claim_delivery`.
#[derive(Default)]
pub(super) struct Claims(Mutex<HashMap<OutboundDeliveryId, Claim>>);

struct Claim {
    until: DateTime<Utc>,
    /// Set by a save, which releases the claim: the version (`updated_at`) it saved. Until
    /// the claim would have ended, only a copy read after that save may claim again.
    saved_version: Option<DateTime<Utc>>,
}

impl Claims {
    /// Claims `delivery` until `until` unless a claim is live at `now` or it was saved since
    /// this copy was read.
    pub fn claim(&self, delivery: &Delivery, until: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let mut claims = self.lock();
        if let Some(claim) = claims.get(&delivery.id) {
            let current = claim.saved_version == Some(delivery.updated_at);
            if claim.until > now && !current {
                return false;
            }
        }
        if claims.len() >= CLAIMS {
            claims.retain(|_, claim| claim.saved_version.is_none() && claim.until > now);
        }
        let claim = Claim {
            until,
            saved_version: None,
        };
        claims.insert(delivery.id.clone(), claim);
        true
    }

    /// Releases the claim on a delivery that was just saved as `delivery`.
    pub fn release(&self, delivery: &Delivery) {
        if let Some(claim) = self.lock().get_mut(&delivery.id) {
            claim.saved_version = Some(delivery.updated_at);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OutboundDeliveryId, Claim>> {
        self.0.lock().expect("delivery claims lock poisoned")
    }
}

/// Every subscription, oldest first, and where each id is in that list.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    pub list: Arc<[Subscription]>,
    /// The same subscriptions, each shared with the deliveries reading it.
    by_id: HashMap<SubscriptionId, Arc<Subscription>>,
}

impl Subscriptions {
    pub fn new(list: Vec<Subscription>) -> Self {
        let by_id = list
            .iter()
            .map(|subscription| (subscription.id.clone(), Arc::new(subscription.clone())))
            .collect();
        Self {
            list: list.into(),
            by_id,
        }
    }

    pub fn get(&self, id: &SubscriptionId) -> Option<Arc<Subscription>> {
        self.by_id.get(id).cloned()
    }
}

pub(super) struct OutboundCache {
    /// The change count, and the subscriptions as of it if they were loaded since.
    subscriptions: Mutex<(u64, Option<Arc<Subscriptions>>)>,
    pub events: Cache<EventId, Arc<Event>>,
    pub deliveries: Cache<OutboundDeliveryId, Delivery>,
    pub claims: Claims,
}

impl Default for OutboundCache {
    fn default() -> Self {
        Self {
            subscriptions: Mutex::default(),
            events: Cache::new(EVENTS),
            deliveries: Cache::new(DELIVERIES),
            claims: Claims::default(),
        }
    }
}

impl OutboundCache {
    /// The cached subscriptions, or the generation to pass to
    /// [`fill_subscriptions`](Self::fill_subscriptions) with what the caller loads.
    pub fn subscriptions(&self) -> Result<Arc<Subscriptions>, u64> {
        let state = self.lock();
        match &state.1 {
            Some(subscriptions) => Ok(subscriptions.clone()),
            None => Err(state.0),
        }
    }

    /// Keeps `loaded` unless a change was committed since `generation` was handed out:
    /// then it may predate that change, and the next read loads again.
    pub fn fill_subscriptions(&self, generation: u64, loaded: Subscriptions) -> Arc<Subscriptions> {
        let loaded = Arc::new(loaded);
        let mut state = self.lock();
        if state.0 == generation {
            state.1 = Some(loaded.clone());
        }
        loaded
    }

    /// Called after every committed (or possibly committed) change of a subscription.
    pub fn subscriptions_changed(&self) {
        let mut state = self.lock();
        state.0 += 1;
        state.1 = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Option<Arc<Subscriptions>>)> {
        self.subscriptions
            .lock()
            .expect("subscription cache lock poisoned")
    }
}
