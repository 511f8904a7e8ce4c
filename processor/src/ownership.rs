//! Which partitions this member owns, since when, and whether consumption
//! is paused. Shared by the rebalance callback (which changes it) and the
//! pipeline (which commits offsets only for partitions it still owns, in
//! the same assignment the batch was read in).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::TopicPartitionList;

pub type PartitionKey = (String, i32);

#[derive(Default)]
struct State {
    /// Assignment generation of each owned partition; absent when not owned.
    owned: HashMap<PartitionKey, u64>,
    last_generation: u64,
    /// Stages currently retrying: consumption stays paused while > 0.
    pausers: usize,
    /// Set when the processor must stop rather than go on unsafely.
    fatal: Option<String>,
}

#[derive(Clone, Default)]
pub struct Ownership(Arc<Mutex<State>>);

impl Ownership {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it half-updated (each
        // update is one map operation), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records newly assigned partitions under a new generation.
    pub fn assigned(&self, tpl: &TopicPartitionList) {
        let mut s = self.state();
        s.last_generation += 1;
        let generation = s.last_generation;
        for e in tpl.elements() {
            s.owned.insert((e.topic().to_owned(), e.partition()), generation);
        }
    }

    pub fn revoked(&self, tpl: &TopicPartitionList) {
        let mut s = self.state();
        for e in tpl.elements() {
            s.owned.remove(&(e.topic().to_owned(), e.partition()));
        }
    }

    pub fn revoked_all(&self) {
        self.state().owned.clear();
    }

    /// The generation `partition` is owned in, if it is.
    pub fn generation(&self, topic: &str, partition: i32) -> Option<u64> {
        self.state().owned.get(&(topic.to_owned(), partition)).copied()
    }

    /// Counts a stage that starts retrying; true when it is the first.
    pub fn pause_requested(&self) -> bool {
        let mut s = self.state();
        s.pausers += 1;
        s.pausers == 1
    }

    /// Counts a stage that stopped retrying; true when it was the last.
    pub fn resume_requested(&self) -> bool {
        let mut s = self.state();
        s.pausers = s.pausers.saturating_sub(1);
        s.pausers == 0
    }

    pub fn is_paused(&self) -> bool {
        self.state().pausers > 0
    }

    pub fn fail(&self, reason: String) {
        self.state().fatal.get_or_insert(reason);
    }

    pub fn fatal(&self) -> Option<String> {
        self.state().fatal.clone()
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Offset;

    use super::*;

    fn tpl(partitions: &[i32]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition_offset("t", *p, Offset::Invalid).unwrap();
        }
        tpl
    }

    #[test]
    fn a_reassigned_partition_has_a_new_generation() {
        let o = Ownership::default();
        o.assigned(&tpl(&[0, 1]));
        let first = o.generation("t", 0).unwrap();
        o.revoked(&tpl(&[0]));
        assert_eq!(o.generation("t", 0), None);
        assert_eq!(o.generation("t", 1), Some(first));
        o.assigned(&tpl(&[0]));
        assert_ne!(o.generation("t", 0), Some(first));
        o.revoked_all();
        assert_eq!(o.generation("t", 1), None);
    }

    #[test]
    fn pauses_nest() {
        let o = Ownership::default();
        assert!(o.pause_requested());
        assert!(!o.pause_requested());
        assert!(!o.resume_requested());
        assert!(o.is_paused());
        assert!(o.resume_requested());
        assert!(!o.is_paused());
    }
}
