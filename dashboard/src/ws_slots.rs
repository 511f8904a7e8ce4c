//! Caps on open WebSockets: per session, per client address and in total.
//! A slot is taken at the upgrade and given back when the connection ends
//! (or the upgrade never completes). The maps hold only keys with an open
//! connection, so they are bounded by the total cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WsRefused {
    #[error("too many open streams for this session")]
    Session,
    #[error("too many open streams from this address")]
    Address,
    #[error("too many open streams")]
    Total,
}

pub struct WsSlots {
    per_session: usize,
    per_address: usize,
    total: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    sessions: HashMap<String, usize>,
    addresses: HashMap<IpAddr, usize>,
    total: usize,
}

/// An open stream's slot; released on drop.
pub struct WsSlot {
    slots: Arc<WsSlots>,
    session: String,
    address: IpAddr,
}

impl WsSlots {
    pub fn new(per_session: usize, per_address: usize, total: usize) -> Self {
        WsSlots { per_session, per_address, total, counts: Mutex::new(Counts::default()) }
    }

    pub fn acquire(self: &Arc<Self>, session: &str, address: IpAddr) -> Result<WsSlot, WsRefused> {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if c.total >= self.total {
            return Err(WsRefused::Total);
        }
        if c.sessions.get(session).copied().unwrap_or(0) >= self.per_session {
            return Err(WsRefused::Session);
        }
        if c.addresses.get(&address).copied().unwrap_or(0) >= self.per_address {
            return Err(WsRefused::Address);
        }
        c.total += 1;
        *c.sessions.entry(session.to_owned()).or_insert(0) += 1;
        *c.addresses.entry(address).or_insert(0) += 1;
        Ok(WsSlot { slots: Arc::clone(self), session: session.to_owned(), address })
    }

    /// Open streams now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for WsSlot {
    fn drop(&mut self) {
        let mut c = self.slots.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.sessions.get_mut(&self.session) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.sessions.remove(&self.session);
            }
        }
        if let Some(n) = c.addresses.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.addresses.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_session_address_and_total_and_releases_on_drop() {
        let slots = Arc::new(WsSlots::new(2, 3, 4));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let s1 = slots.acquire("s1", a).unwrap();
        let _s1b = slots.acquire("s1", a).unwrap();
        assert_eq!(slots.acquire("s1", b).err(), Some(WsRefused::Session));
        let _s2 = slots.acquire("s2", a).unwrap();
        assert_eq!(slots.acquire("s3", a).err(), Some(WsRefused::Address));
        let _s4 = slots.acquire("s4", b).unwrap();
        assert_eq!(slots.acquire("s5", b).err(), Some(WsRefused::Total));
        drop(s1);
        assert_eq!(slots.open(), 3);
        assert!(slots.acquire("s1", b).is_ok());
    }
}
