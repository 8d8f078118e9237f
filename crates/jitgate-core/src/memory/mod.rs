//! In-memory adapters: a [`MemoryStore`](store::MemoryStore), a
//! [`MemoryNotifier`](notifier::MemoryNotifier) and the [`RuleTable`](rule_table::RuleTable)
//! policy; thread-safe, for tests, examples and single-process services.

pub(crate) mod notifier;
pub(crate) mod rule_table;
pub(crate) mod store;
