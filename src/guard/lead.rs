//! Who drives the guards and schedules. A single process drives its own; with the rules in
//! PostgreSQL exactly one replica of the fleet does: the one holding a session advisory lock
//! on a connection of its own, so a replica that dies or loses the database lets another one
//! take over at its next tick.

/// This replica's claim to drive.
pub enum Lead {
    /// Not shared: always drives.
    Single,
}

impl Lead {
    /// The claim that fits `source`.
    pub fn for_source(_source: &crate::config::source::Source) -> Lead {
        Lead::Single
    }

    /// Take or keep the lead; whether this replica drives now.
    pub async fn acquire(&self) -> bool {
        match self {
            Lead::Single => true,
        }
    }

    /// Whether this replica drove at its last tick.
    pub fn holds(&self) -> bool {
        match self {
            Lead::Single => true,
        }
    }

    /// Give the lead up (shutdown), so another replica takes it at once.
    pub async fn release(&self) {}
}
