//! State kept by operators, organised by key group so it can be snapshotted and moved by key
//! group when a job is rescaled.

mod keyed_map;

pub use keyed_map::KeyGroupedMap;
