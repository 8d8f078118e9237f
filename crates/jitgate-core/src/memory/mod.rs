//! In-memory adapters: a [`MemoryStore`] and a [`MemoryNotifier`], thread-safe, for tests,
//! examples and single-process services.

mod notifier;
mod store;

pub use notifier::MemoryNotifier;
pub use store::MemoryStore;
